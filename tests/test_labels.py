"""Labels module (intake/cohort): source-table mapping and validation with file row numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.errors import ConfigError
from radiogenomics.labels import (
    MARKERS,
    check_labels,
    load_labels,
    marker_binary,
    transform_id,
    validate_labels,
)

PDGM_SPEC = {
    "id_column": "ID",
    "id_transform": {"regex": r"UCSF-PDGM-(\d+)", "format": "PDGM{0:0>4}"},
    "columns": {
        "idh": "IDH",
        "mgmt": "MGMT status",
        "sex": "Sex",
        "age": "Age at MRI",
        "os_days": "OS",
        "os_event": "1-dead 0-alive",
    },
    "values": {
        "idh": {"wildtype": "wildtype", r"IDH[12] .*|mutated.*": "mutant"},
        "mgmt": {"positive": "methylated", "negative": "unmethylated", "indeterminate": None},
    },
}


def _write(tmp_path: Path, text: str, name: str = "labels.tsv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_markers_positive_class_first() -> None:
    assert MARKERS["idh"] == ("mutant", "wildtype")
    assert MARKERS["mgmt"][0] == "methylated"
    s = marker_binary(pd.Series(["mutant", "wildtype", np.nan]), "idh")
    assert s.iloc[0] == 1.0 and s.iloc[1] == 0.0 and np.isnan(s.iloc[2])


def test_transform_id_regex_format() -> None:
    t = {"regex": r"UCSF-PDGM-(\d+)", "format": "PDGM{0:0>4}"}
    assert transform_id("UCSF-PDGM-004", t) == "PDGM0004"
    assert transform_id("UCSF-PDGM-0004", t) == "PDGM0004"
    assert transform_id("other", t) == "other"


def test_real_ucsf_pdgm_counts(shared_data: Path) -> None:
    df = load_labels(shared_data / "tables/ucsf_pdgm/UCSF-PDGM-metadata_v2.csv", PDGM_SPEC)
    assert len(df) == 501
    # README: IDH wildtype 398, mutant variants 103; MGMT positive 302 / negative 114.
    assert df["idh"].value_counts().to_dict() == {"wildtype": 398, "mutant": 103}
    assert (df["mgmt"] == "methylated").sum() == 302 and (df["mgmt"] == "unmethylated").sum() == 114
    assert validate_labels(df) == []
    typed = check_labels(df)
    assert typed["os_event"].sum() == 251 and typed.loc[2, "subject"] == "PDGM0004"


def test_issues_carry_file_row_and_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "subject\tidh\tage\tos_event\nA\tmutant\t40\t1\nB\tmaybe\t41\t0\n"
        "A\twildtype\tx\t2\nC\t\t\t\n",
    )
    df = load_labels(p)
    issues = validate_labels(df, known_subjects=["A", "B"])
    got = {(i.row, i.column, i.value) for i in issues}
    assert (3, "idh", "maybe") in got  # value outside vocabulary, row 3 of the file
    assert (4, "subject", "A") in got  # duplicate
    assert (4, "age", "x") in got  # not a number
    assert (4, "os_event", "2") in got  # not 0/1
    assert (5, "subject", "C") in got  # unknown subject
    assert len(issues) == 5
    with pytest.raises(ConfigError, match=r"row 3, column 'idh'"):
        check_labels(df, known_subjects=["A", "B"], source=p)


def test_empty_labels_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        load_labels(_write(tmp_path, ""))
    with pytest.raises(ConfigError, match="no rows"):
        load_labels(_write(tmp_path, "subject\tidh\n", "h.tsv"))
    with pytest.raises(ConfigError, match="id column"):
        load_labels(_write(tmp_path, "id,idh\nA,mutant\n", "x.csv"), {"id_column": "ID"})


def test_schema_accepts_canonical_table(tmp_path: Path, project_root: Path) -> None:
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(project_root / "workflow/schemas/labels.schema.yaml")
    good = check_labels(load_labels(_write(tmp_path, "subject\tidh\tsex\nA\tmutant\tF\nB\t\tM\n")))
    validate(good, schema)
    bad = pd.DataFrame({"subject": ["A"], "idh": ["mut"]})
    with pytest.raises(WorkflowError):
        validate(bad, schema)


def test_old_merged_egfr_column_is_split(tmp_path: Path) -> None:
    """`egfr` (amplification or EGFRvIII): not_amplified -> both negative; amplified ->
    amplification only with EGFRvIII known negative; split columns win over the merged one."""
    text = (
        "subject\tegfr\tegfrviii\tegfr_amplification\n"
        "A\tnot_amplified\t\t\n"
        "B\tamplified\tnegative\t\n"
        "C\tamplified\t\t\n"
        "D\tamplified\tpositive\t\n"
        "E\tamplified\tpositive\tamplified\n"
        "F\t\t\t\n"
    )
    df = check_labels(load_labels(_write(tmp_path, text)))
    assert "egfr" not in df.columns
    got = dict(zip(df["subject"], df["egfr_amplification"].fillna(""), strict=True))
    viii = dict(zip(df["subject"], df["egfrviii"].fillna(""), strict=True))
    assert got == {"A": "not_amplified", "B": "amplified", "C": "", "D": "", "E": "amplified",
                   "F": ""}  # fmt: skip
    assert viii == {"A": "negative", "B": "negative", "C": "", "D": "positive", "E": "positive",
                    "F": ""}  # fmt: skip
    # A bad value in the old column is still reported with its row.
    with pytest.raises(ConfigError, match="row 2, column 'egfr'"):
        check_labels(load_labels(_write(tmp_path, "subject\tegfr\nA\tyes\n", "bad.tsv")))


def test_split_egfr_vocabulary() -> None:
    assert MARKERS["egfr_amplification"] == ("amplified", "not_amplified")
    assert MARKERS["egfrviii"] == ("positive", "negative")
    assert MARKERS["chr7_gain_chr10_loss"] == ("present", "absent")
    assert "egfr" not in MARKERS
