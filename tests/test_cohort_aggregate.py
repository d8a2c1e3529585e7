"""Aggregation (cohort stage): per-subject files, failures, feature-table cohorts, UCSF-PDGM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.cohort.aggregate import aggregate, merge_labels, read_feature_row, run_aggregate
from radiogenomics.cohort.feature_table_cohort import load_feature_table
from radiogenomics.errors import ConfigError
from radiogenomics.intake.feature_table import id_number
from radiogenomics.io import read_tsv, write_json, write_tsv
from radiogenomics.labels import load_labels

UCSF = "tables/ucsf_pdgm"


def _subject(root: Path, cohort: str, subject: str, value: float, fail: bool = False) -> dict:
    sd = root / cohort / f"sub-{subject}" / "ses-01"
    ids = {"cohort": cohort, "subject": subject, "session": "01"}
    for fam in ("lesion_wide", "histogram"):
        row = {
            **ids,
            f"{fam}__adc__whole_tumor__median": value,
            f"prov__{fam}": "v1",
            "qc_reason": "no rcbv" if fam == "histogram" else "",
        }
        write_tsv(pd.DataFrame([row]), sd / "features" / f"{fam}.tsv")
    write_tsv(
        pd.DataFrame(
            [{**ids, "habitat__h1__fraction": 0.5, "habitat__inputs": "adc", "qc_reason": ""}]
        ),
        sd / "habitats" / "habitat_fractions.tsv",
    )
    if fail:
        write_json(
            {"stage": "segment_tumor", "file": "x.nii.gz", "message": "empty mask"},
            sd / "qc" / "failure.json",
        )
        (sd / "features" / "histogram.tsv").write_text("")  # runner placeholder
    return {**ids, "role": "discovery", "site": "s1", "scanner": "3T"}


def test_aggregate_skips_failures_and_joins_families(tmp_path: Path) -> None:
    subs = [_subject(tmp_path, "c1", f"s{i}", float(i), fail=(i == 2)) for i in range(4)]
    # A subject whose feature file is an empty placeholder without marker is also a failure.
    subs.append(_subject(tmp_path, "c1", "s9", 9.0))
    (tmp_path / "c1/sub-s9/ses-01/features/lesion_wide.tsv").write_text("")
    feats, fails = aggregate(pd.DataFrame(subs), ["lesion_wide", "histogram"], root=tmp_path)
    assert feats["subject"].tolist() == ["s0", "s1", "s3"]
    assert list(feats.columns[:6]) == ["cohort", "subject", "session", "role", "site", "scanner"]
    assert feats["lesion_wide__adc__whole_tumor__median"].tolist() == [0.0, 1.0, 3.0]
    assert "habitat__h1__fraction" in feats.columns and "habitat__inputs" not in feats.columns
    assert not any(c.startswith("prov__") for c in feats.columns)
    assert feats["qc_reason"].iloc[0] == "no rcbv"
    assert fails[["subject", "stage"]].values.tolist() == [
        ["s2", "segment_tumor"],
        ["s9", "features"],
    ]
    assert fails["message"].iloc[0] == "empty mask"


def test_merge_labels_and_rule_entry(tmp_path: Path) -> None:
    subs = [_subject(tmp_path / "results", "c1", f"s{i}", float(i)) for i in range(2)]
    write_tsv(
        pd.DataFrame({"subject": ["s0", "s1", "s7"], "idh": ["mutant", "wildtype", "mutant"]}),
        tmp_path / "c1_labels.tsv",
    )
    lab = merge_labels({"c1": tmp_path / "c1_labels.tsv", "c2": tmp_path / "missing.tsv"})
    assert lab.columns.tolist() == ["cohort", "subject", "idh"] and len(lab) == 3
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)  # results/ relative, as in a Snakemake run
    try:
        run_aggregate(
            subs,
            ["lesion_wide", "histogram"],
            [],
            {"c1": "c1_labels.tsv"},
            "out/features.tsv",
            "out/labels.tsv",
            "out/failures.tsv",
            "out/summary.tsv",
        )
    finally:
        os.chdir(cwd)
    summary = read_tsv(tmp_path / "out/summary.tsv")
    assert summary.to_dict("records")[0] | {} == {
        "cohort": "c1",
        "rows": 2,
        "subjects": 2,
        "failed": 0,
        "with_labels": 2,
        "labels_without_features": 1,
        "features": 3,
    }
    # s7 has labels but no images: counted in the summary (and in the intake report), while
    # failures.tsv holds only subjects that were attempted and failed.
    assert read_tsv(tmp_path / "out/failures.tsv", dtype=str).empty


def test_ucsf_pdgm_feature_table_cohort(shared_data: Path) -> None:
    path = shared_data / UCSF / "radiomic_features_T1gad_bias_wt_501.csv"
    spec = {"id_column": "ID", "include": "^original_", "seq": "t1ce", "roi": "whole_tumor"}
    ft = load_feature_table({"name": "ucsf", "path": str(path), "feature_table": spec})
    assert ft.shape == (501, 103)  # 3 id columns + the 100 original_* features
    assert ft["subject"].iloc[0] == "UCSFPDGM004"
    assert "radiomics__t1ce__whole_tumor__original_shape_VoxelVolume" in ft.columns
    # Mask voxel count of UCSF-PDGM-004 quoted in the data README: 41919.
    raw = pd.read_csv(path)
    assert raw.loc[0, "diagnostics_Mask-original_VoxelNum"] == 41919
    # Labels (ID "UCSF-PDGM-004") and features join on every patient after the same safe_id.
    labels = load_labels(shared_data / UCSF / "UCSF-PDGM-metadata_v2.csv", {"id_column": "ID"})
    assert set(labels["subject"].str.replace("-", "")) == set(ft["subject"])
    # The example config's ID-order split: 361 discovery + 140 validation.
    disc = load_feature_table(
        {
            "name": "d",
            "path": str(path),
            "feature_table": {**spec, "id_range": {"min": 4, "max": 400}},
        }
    )
    assert len(disc) == 361 and id_number("UCSF-PDGM-400") == 400
    feats, _ = aggregate(
        pd.DataFrame(columns=["cohort", "subject", "session"]),
        [],
        [
            {
                "name": "ucsf",
                "path": str(path),
                "feature_table": spec,
                "role": "discovery",
                "site": "ucsf",
            }
        ],
    )
    assert len(feats) == 501 and (feats["site"] == "ucsf").all()
    assert np.isfinite(feats.filter(like="radiomics__").to_numpy()).all()
    with pytest.raises(ConfigError, match="no numeric feature columns"):
        load_feature_table(
            {"name": "x", "path": str(path), "feature_table": {**spec, "include": "^nothing"}}
        )


def test_usable_subjects_names_the_tied_reason_the_same_way_whatever_the_row_order():
    from radiogenomics.cohort.aggregate import usable_subjects

    features = pd.DataFrame({"cohort": ["a"], "subject": ["A1"]})
    rows = [
        {"cohort": "b", "subject": "B2", "stage": "segment_tumor", "message": "empty ROI"},
        {"cohort": "b", "subject": "B1", "stage": "intake", "message": "flair missing"},
    ]
    for order in (rows, rows[::-1]):
        table = usable_subjects(["a", "b"], features, pd.DataFrame(order)).set_index("cohort")
        assert table.loc["a", "usable"] == 1 and table.loc["a", "failed"] == 0
        assert table.loc["b", "usable"] == 0 and table.loc["b", "failed"] == 2
        assert table.loc["b", "most_common_reason"] == "intake: flair missing (1 of 2)"


def test_feature_row_keeps_numeric_and_boolean_features_only(tmp_path: Path) -> None:
    path = tmp_path / "family.tsv"
    path.write_text(
        "cohort\tsubject\tfam__roi__mean\tfam__roi__present\tfam__roi__label\tprov__version\t"
        "qc_reason\nc\tS1\t1.5\tTrue\tabc\t3\tsmall ROI\n"
    )
    assert read_feature_row(path) == {
        "fam__roi__mean": 1.5,
        "fam__roi__present": 1.0,  # a yes/no feature is a number to the models
        "qc_reason": "small ROI",
    }
