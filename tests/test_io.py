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


def test_formula_like_text_is_neutralised_numbers_are_not(tmp_path):
    """CSV injection: text starting with = + - @ tab CR is written behind a quote."""
    df = pd.DataFrame(
        {
            "subject": ["A1", "A2", "A3", "A4", "A5", "A6", "A7"],
            "value": ["=2+3", "+cmd|' /C calc'!A0", "-1.5", "@SUM(A1)", "\t=1", "\r=1", "-"],
            "number": [-1.5, 2.0, -3e-5, 4.0, 5.0, 6.0, 7.0],
            '=HYPERLINK("x")': ["-inf", "+3", "x", None, "", "a-b", "'=kept"],
        }
    )
    target = tmp_path / "t.tsv"
    write_tsv(df, target)
    back = read_tsv(target, dtype=str, keep_default_na=False)
    assert back["value"].tolist() == [
        "'=2+3", "'+cmd|' /C calc'!A0", "-1.5", "'@SUM(A1)", "'\t=1", "'\n=1", "'-"
    ]  # fmt: skip
    assert back.columns[-1] == '\'=HYPERLINK("x")'
    assert back.iloc[:, -1].tolist() == ["-inf", "+3", "x", "", "", "a-b", "'=kept"]
    # Real numbers stay numbers, in the same bytes as before.
    assert read_tsv(target)["number"].tolist() == [-1.5, 2.0, -3e-5, 4.0, 5.0, 6.0, 7.0]
    assert df["value"][0] == "=2+3"  # the caller's frame is not changed
    # A CR inside text would end the row for every reader: it is written as a (quoted) LF.
    write_tsv(pd.DataFrame({"v": ["a\r\nb", "c\rd"], "n": [1, 2]}), target)
    back = read_tsv(target, dtype=str)
    assert back["v"].tolist() == ["a\nb", "c\nd"] and back["n"].tolist() == ["1", "2"]


def test_numeric_and_clean_tables_are_written_byte_identically(tmp_path):
    df = pd.DataFrame(
        {"cohort": ["c", "c"], "subject": ["S1", "S2"], "x": [-1.25, 3.0], "qc_reason": ["", None]}
    )
    target = tmp_path / "t.tsv"
    write_tsv(df, target)
    plain = df.to_csv(sep="\t", index=False, float_format="%.10g", lineterminator="\n")
    assert target.read_text() == plain
    indexed = df.set_index("subject")
    write_tsv(indexed, target, index=True)
    assert target.read_text() == indexed.to_csv(sep="\t", float_format="%.10g", lineterminator="\n")
    write_tsv(indexed.rename(index={"S1": "-S1"}), target, index=True)
    assert target.read_text().splitlines()[1].startswith("'-S1\t")
