"""IO at the edges (all stages): atomic writes leave either the whole file or nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from radiogenomics.io import atomic_path, read_tsv, write_tsv


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "features" / "radiomics.tsv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a table")
        raise RuntimeError("killed")
    assert list(target.parent.iterdir()) == []


def test_rerun_replaces_what_a_killed_write_left(tmp_path):
    """SIGKILL skips every cleanup: the rerun writes the same temporary name and renames it."""
    target = tmp_path / "radiomics.tsv"
    with atomic_path(target) as tmp:
        stale = tmp
    stale.write_text("partial")  # what a killed writer leaves behind
    write_tsv(pd.DataFrame({"a": [1.5]}), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["radiomics.tsv"]
    assert read_tsv(target)["a"].tolist() == [1.5]


def test_temporary_name_keeps_the_suffixes_writers_read(tmp_path):
    with atomic_path(tmp_path / "t1.nii.gz") as a, atomic_path(tmp_path / "t1.json") as b:
        assert a.name == ".t1.tmp.nii.gz" and b.name == ".t1.tmp.json"
