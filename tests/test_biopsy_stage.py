"""Biopsy stage entry points (rules biopsy_features, biopsy_model, biopsy_maps) on a synthetic
cohort with planted EGFR amplification fields: sample AUC, permutation p, maps vs the field, a bad
sample recorded without losing the others."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from biopsy_helpers import build_cohort

from radiogenomics.biopsy.stage import run_biopsy_features, run_biopsy_maps, run_biopsy_model_rule
from radiogenomics.config import section_defaults
from radiogenomics.io import read_tsv, write_tsv


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("bxstage")
    coh = build_cohort(root, n_subjects=20, n_amplified=14, seed=0)
    table = coh.table.copy()
    bad = table.iloc[[0]].assign(sample_id="S00-OUT", x=900.0)  # far outside the image
    write_tsv(pd.concat([table, bad]), root / "biopsies.tsv")
    settings = section_defaults("biopsy", {"n_permutations": 19, "bootstrap_n": 200})
    sessions = [{"cohort": coh.cohort, "subject": s, "session": "01"}
                for s in sorted(coh.fields)]  # fmt: skip
    out = root / "out"
    run_biopsy_features({coh.cohort: str(root / "biopsies.tsv")}, {coh.cohort: "discovery"},
                        sessions, settings, str(out / "features.tsv"),
                        str(out / "failures.tsv"), root)  # fmt: skip
    names = {"metrics": "metrics.tsv", "predictions": "predictions.tsv", "model": "model.joblib",
             "coefficients": "coefficients.tsv", "roc": "roc.png"}  # fmt: skip
    paths = {k: str(out / "egfr_amplification" / f) for k, f in names.items()}
    run_biopsy_model_rule(str(out / "features.tsv"), "egfr_amplification", settings, 0, paths)
    run_biopsy_maps(paths["model"], sessions, "egfr_amplification", settings, str(out / "maps"),
                    str(out / "maps.tsv"), str(out / "overlays"), 2, root)  # fmt: skip
    return coh, out, len(table)


def test_bad_sample_is_recorded_and_the_others_kept(stage) -> None:
    coh, out, n = stage
    fails = read_tsv(out / "failures.tsv", dtype={"subject": str})
    assert fails["sample_id"].tolist() == ["S00-OUT"] and "outside" in fails["message"].iloc[0]
    assert len(read_tsv(out / "features.tsv")) == n


def test_sample_auc_and_permutation_resolution(stage) -> None:
    _, out, n = stage
    m = read_tsv(out / "egfr_amplification" / "metrics.tsv").iloc[0]
    assert m["status"] == "ok" and m["n_samples"] == n and m["n_subjects"] == 20
    assert m["auc"] >= 0.85 and m["auc_ci_low"] > 0.5
    assert m["n_permutations"] == 19 and m["permutation_p"] == pytest.approx(0.05)
    assert 0.3 < m["shuffled_auc_mean"] < 0.7


def test_maps_follow_the_planted_field(stage) -> None:
    coh, out, _ = stage
    table = read_tsv(out / "maps.tsv", dtype={"subject": str})
    assert (table["status"] == "ok").all() and len(table) == 20
    rs = []
    for rec in table.to_dict("records"):
        field = coh.fields[rec["subject"]]
        if field.max() < 0.5:
            continue
        prob = np.asarray(nib.load(rec["map"]).dataobj)
        core = coh.tumour[rec["subject"]]
        rs.append(np.corrcoef(prob[core], field[core])[0, 1])
    assert len(rs) == 14 and np.median(rs) >= 0.7
    assert len(list(Path(out / "overlays").glob("*.png"))) == 2
