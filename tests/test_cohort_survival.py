"""Survival (cohort stage): planted hazard -> out-of-fold C-index, KM/log-rank, HR direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.cohort.survival import (
    c_index,
    cox_score_statistics,
    hazard_ratios,
    logrank,
    oof_risk,
    run_survival,
)
from radiogenomics.io import read_tsv, write_tsv


def planted_survival(n: int = 200, seed: int = 0):
    """Exponential survival whose log-hazard is 0.8 x feature 0; ~25 % censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    hazard = np.exp(0.8 * X[:, 0]) / 500
    t = rng.exponential(1 / hazard)
    c = rng.uniform(0, np.quantile(t, 0.95) * 1.5, n)
    time, event = np.minimum(t, c), (t <= c).astype(int)
    df = pd.DataFrame(X, columns=[f"radiomics__t1__whole_tumor__f{i}" for i in range(8)])
    df["site"] = np.where(rng.random(n) < 0.5, "a", "b")
    return df, time, event


def test_planted_survival_cindex_and_logrank() -> None:
    X, time, event = planted_survival()
    risk = oof_risk(X, time, event, top_k=3, penalizer=0.1, folds=5, seed=0)
    assert risk["risk"].notna().all() and set(risk["fold"]) == set(range(5))
    oracle = c_index(time, X.iloc[:, 0].to_numpy(), event)  # the true log-hazard: 0.66 here
    assert c_index(time, risk["risk"].to_numpy(), event) > max(0.6, oracle - 0.03)
    lr = logrank(time, event, risk["high_risk"].to_numpy())
    assert lr["p_value"] < 0.05
    # Reference: log-rank on two clearly separated exponential groups.
    g = (X.iloc[:, 0] > 0).astype(int).to_numpy()
    assert logrank(time, event, g)["p_value"] < 1e-4
    hr = hazard_ratios(
        pd.DataFrame({"f0": X.iloc[:, 0], "T": time, "E": event}), ["f0"], "T", "E", 0.0
    )
    assert 1.8 < hr["hr"].iloc[0] < 2.8  # exp(0.8) = 2.23
    assert hr["hr_ci_low"].iloc[0] < 2.23 < hr["hr_ci_high"].iloc[0]


def test_cox_score_matches_lifelines_univariate() -> None:
    """The score statistic ranks like lifelines' own univariate fits (signal feature first)."""
    X, time, event = planted_survival(150, 2)
    Z = X.drop(columns="site").to_numpy()
    score = cox_score_statistics(Z, time, event)
    assert np.argmax(score) == 0
    from lifelines import CoxPHFitter

    d = pd.DataFrame({"x": Z[:, 0], "T": time, "E": event})
    lik_ratio = CoxPHFitter().fit(d, "T", "E").log_likelihood_ratio_test().test_statistic
    assert score[0] == pytest.approx(lik_ratio, rel=0.15)  # score and LR tests agree closely


def test_run_survival_writes_outputs(tmp_path: Path) -> None:
    X, time, event = planted_survival(120, 1)
    ids = pd.DataFrame(
        {
            "cohort": "syn",
            "subject": [f"s{i}" for i in range(120)],
            "session": "01",
            "role": "discovery",
        }
    )
    feats = pd.concat([ids, X], axis=1)
    labels = ids[["cohort", "subject"]].assign(os_days=time, os_event=event, age=60.0, sex="M")
    subtypes = ids[["cohort", "subject", "session"]].assign(subtype=1 + (X.iloc[:, 0] > 0))
    for name, df in (("f.tsv", feats), ("l.tsv", labels), ("s.tsv", subtypes)):
        write_tsv(df, tmp_path / name)
    settings = {
        "seed": 1,
        "combat": {"enabled": True, "batch_column": "site"},
        "survival": {
            "time": "os_days",
            "event": "os_event",
            "features": ["^radiomics__"],
            "top_k": 3,
            "penalizer": 0.1,
            "folds": 5,
            "covariates": ["age", "sex"],
            "min_subjects": 20,
            "min_events": 10,
        },
    }
    out = tmp_path / "surv"
    run_survival(
        str(tmp_path / "f.tsv"),
        str(tmp_path / "l.tsv"),
        None,
        str(tmp_path / "s.tsv"),
        settings,
        str(out),
    )
    m = read_tsv(out / "metrics.tsv").set_index("analysis")
    assert m.loc["cox_oof", "c_index"] > 0.6
    assert m.loc["logrank_subtype", "p_value"] < 0.05
    hr = read_tsv(out / "hazard_ratios.tsv")
    assert hr["covariate"].tolist() == ["radiomic_risk"]  # constant age/sex dropped
    for f in ("km_risk.png", "km_subtype.png", "risk.tsv"):
        assert (out / f).stat().st_size > 0
