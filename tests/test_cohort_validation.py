"""External validation (cohort stage): frozen discovery models; validation rows never train."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from radiogenomics.cohort.markers import Strategy, StrategyOutputs, run_strategy
from radiogenomics.cohort.validation import run_validation, validate_cohort
from radiogenomics.io import read_tsv, write_tsv

SETTINGS = {
    "seed": 11,
    "cv": {"outer_folds": 5, "repeats": 1, "inner_folds": 3},
    "combat": {"enabled": True, "batch_column": "site"},
    "min_per_class": 8,
    "validation_min_per_class": 3,
    "bootstrap_n": 200,
}
STRATEGY = Strategy("idh", "maps_logistic", "logistic", ("^lesion_wide__",), {"model__C": [0.1, 1]})


def cohort(name: str, role: str, n: int, sites: list[str], shift: float, scale: float, seed: int):
    """Planted IDH signal in features 0-2; the site adds location/scale effects."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6))
    X[:, :3] += 1.8 * y[:, None]
    site = np.array(sites)[rng.integers(0, len(sites), n)]
    X = (
        X * np.where(site == sites[-1], scale, 1.0)[:, None]
        + np.where(site == sites[-1], shift, 0)[:, None]
    )
    ids = pd.DataFrame(
        {
            "cohort": name,
            "subject": [f"{name}{i:03d}" for i in range(n)],
            "session": "01",
            "role": role,
            "site": site,
            "scanner": "",
        }
    )
    feats = pd.DataFrame(X, columns=[f"lesion_wide__adc__whole_tumor__f{i}" for i in range(6)])
    labels = ids[["cohort", "subject"]].assign(idh=np.where(y == 1, "mutant", "wildtype"))
    return pd.concat([ids, feats], axis=1), labels


def test_validation_rows_never_touch_training(tmp_path: Path) -> None:
    disc_f, disc_l = cohort("disc", "discovery", 160, ["a", "b"], 2.0, 1.5, 0)
    val_f, val_l = cohort("val", "validation", 80, ["v"], 4.0, 2.5, 1)
    runs = []
    for i, (vf, vl) in enumerate(
        [
            (val_f, val_l),
            (
                val_f.assign(
                    **{c: val_f[c] * -3 + 50 for c in val_f.columns if c.startswith("lesion_wide")}
                ),
                val_l.assign(idh=val_l["idh"].iloc[::-1].to_numpy()),
            ),
        ]
    ):
        out = StrategyOutputs.in_dir(tmp_path / f"run{i}")
        run_strategy(
            pd.concat([disc_f, vf]), pd.concat([disc_l, vl]), STRATEGY, SETTINGS, set(), out
        )
        runs.append(out)
    for name in ("cv_metrics.tsv", "predictions.tsv", "coefficients.tsv"):
        assert (tmp_path / "run0" / name).read_bytes() == (tmp_path / "run1" / name).read_bytes()
    m0, m1 = (joblib.load(r.model)["pipeline"] for r in runs)
    for key in ("gamma.star", "delta.star", "var.pooled", "stand.mean"):
        np.testing.assert_array_equal(
            m0.named_steps["combat"].estimates_[key], m1.named_steps["combat"].estimates_[key]
        )
    np.testing.assert_array_equal(m0.named_steps["model"].coef_, m1.named_steps["model"].coef_)
    np.testing.assert_array_equal(m0.named_steps["scale"].mean_, m1.named_steps["scale"].mean_)
    assert joblib.load(runs[0].model)["trained_on"] == ["disc"]


def test_unseen_site_validation_with_and_without_harmonisation(tmp_path: Path) -> None:
    disc_f, disc_l = cohort("disc", "discovery", 200, ["a", "b"], 2.0, 1.5, 2)
    val_f, val_l = cohort("val", "validation", 100, ["v"], 3.0, 2.0, 3)
    feats, labels = pd.concat([disc_f, val_f]), pd.concat([disc_l, val_l])
    out = StrategyOutputs.in_dir(tmp_path / "idh" / "maps_logistic")
    run_strategy(feats, labels, STRATEGY, SETTINGS, set(), out)
    payload = joblib.load(out.model)
    metrics, preds = validate_cohort(
        payload, feats, labels, "idh", "val", min_per_class=3, n_boot=200, seed=0
    )
    m = metrics.set_index("harmonisation")
    assert m.loc["reference", "auc"] >= 0.85 and m.loc["none", "auc"] >= 0.85
    # A linear model ranks the same after a site-wide shift, but its probabilities are off:
    assert m.loc["reference", "brier"] < m.loc["none", "brier"]
    assert abs(m.loc["reference", "calibration_intercept"]) < abs(
        m.loc["none", "calibration_intercept"]
    )
    assert len(preds) == 100
    # The frozen model object is not changed by predicting.
    again = joblib.load(out.model)["pipeline"]
    np.testing.assert_array_equal(
        again.named_steps["model"].coef_, payload["pipeline"].named_steps["model"].coef_
    )
    # The rule entry point: selected strategy from the summary, three outputs.
    summary = pd.DataFrame({"strategy": ["maps_logistic"], "selected": [True]})
    write_tsv(summary, tmp_path / "idh" / "summary.tsv")
    write_tsv(feats, tmp_path / "f.tsv")
    write_tsv(labels, tmp_path / "l.tsv")
    v = tmp_path / "validation"
    run_validation(
        str(tmp_path / "f.tsv"),
        str(tmp_path / "l.tsv"),
        str(tmp_path / "idh" / "summary.tsv"),
        str(tmp_path / "idh"),
        "idh",
        "val",
        {**SETTINGS},
        str(v / "metrics.tsv"),
        str(v / "predictions.tsv"),
        str(v / "roc.png"),
    )
    assert read_tsv(v / "metrics.tsv")["auc"].min() >= 0.85
    assert (v / "roc.png").stat().st_size > 0


def test_no_model_or_too_few_is_a_status(tmp_path: Path) -> None:
    val_f, val_l = cohort("val", "validation", 10, ["v"], 0, 1, 4)
    m, p = validate_cohort(
        {"pipeline": None, "message": "x"},
        val_f,
        val_l,
        "idh",
        "val",
        min_per_class=3,
        n_boot=10,
        seed=0,
    )
    assert m["status"].tolist() == ["no_model"] and p.empty
