"""The cnn strategy inside the cohort stage: same rows and outer folds as the other strategies,
sessions without a crop kept, external validation from the validation cohort's crops, a
checkpoint that does not fit recorded as a status naming the file."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
import yaml

from radiogenomics.cohort.cnn_crops import run_cnn_crops
from radiogenomics.cohort.markers import StrategyOutputs, run_strategy, strategies_of
from radiogenomics.cohort.validation import validate_cohort
from radiogenomics.deep.crops import (
    CropSet,
    CropSettings,
    load_crop_set,
    save_crop_set,
)
from radiogenomics.deep.synthetic import planted_crops
from radiogenomics.io import read_tsv

SETTINGS = {
    "seed": 3,
    "cv": {"outer_folds": 4, "repeats": 3, "inner_folds": 3},
    "combat": {"enabled": True, "batch_column": "site"},
    "min_per_class": 8,
    "bootstrap_n": 100,
}
CNN = {"model": "cnn", "channels": ["t1ce", "flair"], "repeats": 1, "epochs": 25,
       "min_epochs": 5, "patience": 6, "widths": [4, 8, 16]}  # fmt: skip


def cohort(tmp_path: Path, n_disc: int = 48, n_val: int = 24):
    """Feature/label tables of two cohorts and one crop file holding both (minus 2 sessions)."""
    X, y = planted_crops(n=n_disc + n_val, channels=2, size=24, effect=1.5, seed=1)
    cohorts = ["disc"] * n_disc + ["val"] * n_val
    subjects = [f"S{i:03d}" for i in range(n_disc + n_val)]
    ids = pd.DataFrame({"cohort": cohorts, "subject": subjects, "session": "01"})
    feats = ids.assign(role=np.where(ids["cohort"] == "disc", "discovery", "validation"),
                       site=ids["cohort"], scanner="",
                       **{"lesion_wide__adc__whole_tumor__median": 0.0})  # fmt: skip
    labels = ids[["cohort", "subject"]].assign(idh=np.where(y == 1, "mutant", "wildtype"))
    keep = np.ones(len(ids), bool)
    keep[[0, 1]] = False  # two discovery sessions without a crop (e.g. a missing channel)
    settings = CropSettings.from_config(CNN)
    meta = ids[keep].reset_index(drop=True).assign(centre_x_mm=0.0, centre_y_mm=0.0,
                                                   centre_z_mm=0.0, roi_voxels=1.0,
                                                   roi_inside_crop=1.0)  # fmt: skip
    cs = CropSet(ids[keep].reset_index(drop=True), X[keep], np.tile(np.eye(4), (keep.sum(), 1, 1)),
                 settings.channel_names, settings.digest(), meta)  # fmt: skip
    path = tmp_path / "crops.npz"
    save_crop_set(cs, path)
    return feats, labels, path


def test_cnn_strategy_in_the_outer_folds_with_validation(tmp_path: Path) -> None:
    feats, labels, crops = cohort(tmp_path)
    markers = {
        "idh": {
            "strategies": {
                "cnn": CNN,
                "maps_logistic": {"model": "logistic", "features": ["^lesion_wide__"]},
            }
        }
    }
    cnn, maps = strategies_of(markers, "idh")
    out = StrategyOutputs.in_dir(tmp_path / "cnn")
    row = run_strategy(feats, labels, cnn, SETTINGS, set(), out, crops=crops)
    assert row["status"] == "ok" and row["repeats"] == 1 and row["n"] == 48
    assert row["message"] == "2 session(s) without a crop"
    assert row["auc"] >= 0.85
    preds = read_tsv(out.predictions, dtype={"subject": str})
    # Same rows (and order) as a feature strategy: the crop-less sessions get the prevalence.
    out2 = StrategyOutputs.in_dir(tmp_path / "maps")
    run_strategy(feats, labels, maps, SETTINGS, set(), out2)
    other = read_tsv(out2.predictions, dtype={"subject": str})
    assert preds["subject"].tolist() == other["subject"].tolist()
    payload = joblib.load(out.model)
    assert payload["kind"] == "cnn"
    metrics, vpreds = validate_cohort(payload, feats, labels, "idh", "val", min_per_class=3,
                                      n_boot=100, seed=0, crops=load_crop_set(crops))  # fmt: skip
    rec = metrics.iloc[0]
    assert rec["harmonisation"] == "none" and len(vpreds) == 24
    assert rec["auc"] >= 0.8 and rec["auc_ci_low"] <= rec["auc"] <= rec["auc_ci_high"]
    assert rec["auc_ci_low"] >= 0.6
    # Two CPU runs: byte-identical predictions.
    again = StrategyOutputs.in_dir(tmp_path / "cnn_again")
    run_strategy(feats, labels, cnn, SETTINGS, set(), again, crops=crops)
    assert Path(out.predictions).read_bytes() == Path(again.predictions).read_bytes()


def test_mismatched_checkpoint_is_a_status_naming_the_file(tmp_path: Path) -> None:
    feats, labels, crops = cohort(tmp_path)
    ckpt = tmp_path / "resnet_wrong.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(7, 2, 3, 3, 3)}}, ckpt)
    markers = {"idh": {"strategies": {"cnn": {**CNN, "checkpoint": str(ckpt)}}}}
    out = StrategyOutputs.in_dir(tmp_path / "cnn")
    row = run_strategy(feats, labels, strategies_of(markers, "idh")[0], SETTINGS, set(), out,
                       crops=crops)  # fmt: skip
    assert row["status"] == "config_error" and str(ckpt) in row["message"]
    assert read_tsv(out.cv_metrics)["status"].tolist() == ["config_error"]
    assert joblib.load(out.model)["pipeline"] is None


def test_feature_table_run_without_imaged_sessions_is_not_run(tmp_path: Path) -> None:
    """UCSF-PDGM-style run (no images): rule cnn_crops writes an empty set, the strategy is not
    run with a message, and the other strategies are untouched."""
    feats, labels, _ = cohort(tmp_path)
    crops = tmp_path / "empty.npz"
    markers = {"idh": {"strategies": {"cnn": CNN}}}
    mfile = tmp_path / "markers.yaml"
    mfile.write_text(yaml.safe_dump({"markers": markers}))
    run_cnn_crops([], str(mfile), "idh", "cnn", str(crops), str(tmp_path / "f.tsv"), tmp_path)
    assert len(load_crop_set(crops, CropSettings.from_config(CNN))) == 0
    out = StrategyOutputs.in_dir(tmp_path / "cnn")
    row = run_strategy(feats, labels, strategies_of(markers, "idh")[0], SETTINGS, set(), out,
                       crops=crops)  # fmt: skip
    assert row["status"] == "no_features" and "no session has a crop" in row["message"]
