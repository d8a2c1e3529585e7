"""Nested CV, metrics and shuffled-label control (cohort stage) on planted synthetic signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radiogenomics.cohort.markers import (
    Strategy,
    StrategyOutputs,
    marker_summary,
    run_strategy,
)
from radiogenomics.cohort.models import (
    binary_metrics,
    bootstrap_auc_ci,
    build_pipeline,
    calibration_slope_intercept,
    nested_cv,
    permutation_control,
)
from radiogenomics.io import read_tsv

SETTINGS = {
    "seed": 7,
    "cv": {"outer_folds": 5, "repeats": 2, "inner_folds": 3},
    "combat": {"enabled": True, "batch_column": "site"},
    "min_per_class": 8,
    "bootstrap_n": 200,
    "n_permutations": 3,
    "permutation_repeats": 1,
    "evidence_alpha": 0.05,
}


def planted(n: int = 160, p: int = 12, effect: float = 1.6, seed: int = 0):
    """Two-site feature table where features 0-2 shift with IDH status; canonical labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    site = np.where(rng.random(n) < 0.5, "a", "b")
    X = rng.normal(size=(n, p))
    X[:, :3] += effect * y[:, None]
    X += np.where(site == "b", 2.0, 0.0)[:, None]
    cols = [f"lesion_wide__adc__whole_tumor__f{i}" for i in range(p)]
    feats = pd.DataFrame(X, columns=cols)
    ids = pd.DataFrame(
        {
            "cohort": "syn",
            "subject": [f"s{i:03d}" for i in range(n)],
            "session": "01",
            "role": "discovery",
            "site": site,
            "scanner": "",
        }
    )
    features = pd.concat([ids, feats], axis=1)
    labels = pd.DataFrame(
        {
            "cohort": "syn",
            "subject": ids["subject"],
            "idh": np.where(y == 1, "mutant", "wildtype"),
            "age": rng.normal(50, 10, n).round(),
            "sex": rng.choice(["M", "F"], n),
        }
    )
    return features, labels, y


def test_planted_signal_auc_and_outputs(tmp_path: Path) -> None:
    features, labels, _ = planted()
    s = Strategy("idh", "maps_logistic", "logistic", ("^lesion_wide__",), {"model__C": [0.1, 1.0]})
    out = StrategyOutputs.in_dir(tmp_path / "idh" / "maps_logistic")
    row = run_strategy(features, labels, s, SETTINGS, set(), out)
    assert row["status"] == "ok" and row["n_features"] == 12
    assert row["auc"] >= 0.9
    assert row["auc_ci_low"] < row["auc"] < row["auc_ci_high"]
    preds = read_tsv(out.predictions)
    assert len(preds) == 160 and preds["prob"].between(0, 1).all()
    coefs = read_tsv(out.coefficients)
    # The three planted features carry the largest coefficients.
    assert set(coefs["feature"].head(3)) == {
        f"lesion_wide__adc__whole_tumor__f{i}" for i in range(3)
    }
    for f in (out.roc, out.calibration, out.model):
        assert Path(f).stat().st_size > 0
    # Dropped (non-robust) features never reach the model.
    dropped = {"lesion_wide__adc__whole_tumor__f0"}
    row2 = run_strategy(
        features, labels, s, SETTINGS, dropped, StrategyOutputs.in_dir(tmp_path / "d")
    )
    assert row2["n_features"] == 11


def test_same_config_twice_is_byte_identical(tmp_path: Path) -> None:
    features, labels, _ = planted(n=100, p=5)
    s = Strategy("idh", "lasso", "lasso", ("^lesion_wide__",), {"model__C": [0.2]})
    for d in ("r1", "r2"):
        run_strategy(features, labels, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path / d))
    for name in ("cv_metrics.tsv", "predictions.tsv", "coefficients.tsv"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes()


def test_outer_folds_in_parallel_give_the_same_predictions() -> None:
    """`cohort.threads` only changes speed: each outer fold carries its own seed."""
    features, labels, y = planted(n=80, p=5, seed=2)
    X = features[[c for c in features.columns if "__" in c] + ["site"]]
    pipe, grid = build_pipeline("lasso"), {"model__C": [0.1, 1.0]}
    kw = {"outer_folds": 4, "repeats": 2, "inner_folds": 3, "seed": 5}
    serial = nested_cv(pipe, grid, X, y, n_jobs=1, **kw)
    parallel = nested_cv(pipe, grid, X, y, n_jobs=2, **kw)
    np.testing.assert_array_equal(serial.oof, parallel.oof)
    assert serial.params == parallel.params


def test_shuffled_labels_average_chance() -> None:
    """20 permutations of the same nested CV: mean AUC within 0.45-0.55, p small on real signal."""
    features, labels, y = planted(n=120, p=6, effect=1.6, seed=3)
    X = features[[c for c in features.columns if "__" in c] + ["site"]]
    pipe = build_pipeline("logistic")
    grid = {"model__C": [0.1]}
    obs = nested_cv(pipe, grid, X, y, outer_folds=5, repeats=1, inner_folds=3, seed=1)
    observed = float(obs.repeat_aucs(y).mean())
    ctrl = permutation_control(
        pipe,
        grid,
        X,
        y,
        observed,
        n_permutations=20,
        outer_folds=5,
        repeats=1,
        inner_folds=3,
        seed=1,
    )
    assert 0.45 <= ctrl["shuffled_auc_mean"] <= 0.55
    assert ctrl["permutation_p"] == pytest.approx(1 / 21)
    assert observed > 0.9


def test_too_few_per_class_is_a_status_not_a_crash(tmp_path: Path) -> None:
    features, labels, _ = planted(n=60)
    labels.loc[labels["idh"] == "mutant", "idh"] = np.nan
    labels.loc[:4, "idh"] = "mutant"
    s = Strategy("idh", "maps_logistic", "logistic", ("^lesion_wide__",), {"model__C": [1.0]})
    out = StrategyOutputs.in_dir(tmp_path / "x")
    row = run_strategy(features, labels, s, SETTINGS, set(), out)
    assert row["status"] == "too_few_per_class"
    m = read_tsv(out.cv_metrics)
    assert m["status"].iloc[0] == "too_few_per_class" and "minimum 8" in m["message"].iloc[0]
    s2 = Strategy("idh", "none", "lasso", ("^nothing__",), {"model__C": [1.0]})
    assert (
        run_strategy(features, labels, s2, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path / "y"))[
            "status"
        ]
        == "no_features"
    )


def test_summary_selects_primary_and_runs_control(tmp_path: Path) -> None:
    features, labels, _ = planted(n=100, p=5)
    markers = {
        "idh": {
            "primary": "missing_maps",
            "strategies": {
                "missing_maps": {"model": "logistic", "features": ["^nothing__"]},
                "maps_lasso": {
                    "model": "lasso",
                    "features": ["^lesion_wide__"],
                    "grid": {"C": [0.2]},
                },
            },
        }
    }
    paths = []
    from radiogenomics.cohort.markers import strategies_of

    for s in strategies_of(markers, "idh"):
        out = StrategyOutputs.in_dir(tmp_path / s.name)
        run_strategy(features, labels, s, SETTINGS, set(), out)
        paths.append(out.cv_metrics)
    table = marker_summary(features, labels, markers, "idh", paths, SETTINGS, set())
    # The primary had no features: the next that ran is the primary, controlled with shuffled
    # labels. 3 permutations cannot give p below 1/4: no evidence, nothing selected.
    prim = table[table["role"] == "primary"].iloc[0]
    assert prim["strategy"] == "maps_lasso" and prim["n_permutations"] == 3
    assert prim["permutation_p"] == 0.25 and prim["verdict"] == "no evidence"
    assert not table["selected"].any()
    assert table.set_index("strategy").loc["missing_maps", "verdict"] == "not run"
    # 19 permutations resolve p = 1/20 = 0.05: the planted signal is evidence and selected.
    table = marker_summary(
        features, labels, markers, "idh", paths, {**SETTINGS, "n_permutations": 19}, set()
    )
    sel = table[table["selected"]]
    assert sel["strategy"].tolist() == ["maps_lasso"]
    assert sel["permutation_p"].iloc[0] == 0.05 and sel["verdict"].iloc[0] == "evidence"


def test_radscore_clinical_uses_covariates(tmp_path: Path) -> None:
    features, labels, y = planted(n=160, p=8, effect=0.8, seed=5)
    labels["age"] = 40 + 25 * y + np.random.default_rng(0).normal(0, 5, len(y))
    labels["tert"] = labels.pop("idh").map({"mutant": "mutant", "wildtype": "wildtype"})
    s = Strategy(
        "tert",
        "radscore_clinical",
        "radscore_clinical",
        ("^lesion_wide__",),
        {"model__C": [0.2]},
        covariates=("age", "sex"),
    )
    row = run_strategy(features, labels, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path))
    assert row["status"] == "ok" and row["auc"] >= 0.9  # age alone is strongly planted
    coefs = read_tsv(tmp_path / "coefficients.tsv")
    assert "clinical__age" in set(coefs["feature"]) and "radscore" in set(coefs["feature"])


def test_metric_helpers_against_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, p, n_boot=50)
    assert m["auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["sensitivity"] == 0.5 and m["specificity"] == 1.0
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.02, 0.98, 20000)
    outcome = (rng.uniform(size=prob.size) < prob).astype(int)
    slope, intercept = calibration_slope_intercept(outcome, prob)
    assert slope == pytest.approx(1.0, abs=0.06) and intercept == pytest.approx(0.0, abs=0.06)
    lo, hi = bootstrap_auc_ci(outcome[:500], prob[:500], n=200)
    observed = roc_auc_score(outcome[:500], prob[:500])
    assert lo < observed < hi and 0.04 < hi - lo < 0.15


def test_strategy_records_what_it_skipped(tmp_path: Path) -> None:
    """A cohort without a map the strategy asks for, or with a feature missing everywhere: the
    strategy runs on what exists and says what it skipped (issue 20: run with what exists)."""
    from radiogenomics.cohort.common import usable_features

    features, labels, _ = planted(n=100, p=5)
    features["lesion_wide__adc__whole_tumor__f4"] = np.nan  # e.g. a map no session has
    patterns = ("^lesion_wide__adc__", "^lesion_wide__rcbv__")  # no rCBV in this cohort
    feats, skipped = usable_features(features, patterns, {"lesion_wide__adc__whole_tumor__f0"})
    assert feats == [f"lesion_wide__adc__whole_tumor__f{i}" for i in (1, 2, 3)]
    assert skipped == (
        "skipped: pattern '^lesion_wide__rcbv__' matches no feature; 1 dropped by the robustness "
        "filter; 1 missing in every subject (e.g. lesion_wide__adc__whole_tumor__f4)"
    )
    s = Strategy("idh", "maps", "logistic", patterns, {"model__C": [1.0]})
    row = run_strategy(features, labels, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path))
    assert row["status"] == "ok" and row["n_features"] == 4
    assert "'^lesion_wide__rcbv__' matches no feature" in row["message"]
    assert read_tsv(StrategyOutputs.in_dir(tmp_path).cv_metrics)["message"][0] == row["message"]
    # Nothing usable: not run, with the reason.
    s = Strategy("idh", "perfusion", "logistic", ("^lesion_wide__rcbv__",), {"model__C": [1.0]})
    row = run_strategy(features, labels, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path / "n"))
    assert row["status"] == "no_features"
    assert (
        "matches no feature"
        in read_tsv(StrategyOutputs.in_dir(tmp_path / "n").cv_metrics)["message"][0]
    )


def test_not_run_figure_quotes_regex_patterns_verbatim(tmp_path: Path) -> None:
    """The UCSF example's maps strategy has no map feature: its placeholder figure quotes two
    patterns ending in '$', which matplotlib read as mathtext and the job failed (CI, issue 20)."""
    from radiogenomics.figures import message_figure

    message = (
        "idh / maps_logistic: no usable feature for ['^lesion_wide__(adc|rcbv)__whole_tumor__"
        "median$', '^mismatch__'] (skipped: pattern '^lesion_wide__(adc|rcbv)__whole_tumor__"
        "median$' matches no feature; pattern '^mismatch__' matches no feature)"
    )
    message_figure(tmp_path / "roc.png", message, title="a $title$ with __ too")
    assert (tmp_path / "roc.png").stat().st_size > 1000
