"""Marker biology in the cohort stage: subgroups (`within`), the unsupervised-first subtype
strategy with FDR, honest verdicts and permutation p resolution, the lean inner grid search
against GridSearchCV, WHO CNS5 types of the demo against its planted types."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from statsmodels.stats.multitest import multipletests

from radiogenomics.cohort.markers import (
    Strategy,
    StrategyOutputs,
    marker_summary,
    run_strategy,
    strategies_of,
    verdict,
)
from radiogenomics.cohort.models import build_pipeline, fit_tuned, permutation_control
from radiogenomics.cohort.subtypes import bh_fdr
from radiogenomics.cohort.validation import validate_cohort
from radiogenomics.cohort.who_cns5 import midline_flags, who_cns5_types
from radiogenomics.demo.plan import labels_table, plan_demo
from radiogenomics.errors import ConfigError
from radiogenomics.io import read_tsv

SETTINGS = {
    "seed": 11,
    "cv": {"outer_folds": 5, "repeats": 2, "inner_folds": 3},
    "combat": {"enabled": True, "batch_column": "site"},
    "min_per_class": 8,
    "bootstrap_n": 200,
    "n_permutations": 9,
    "permutation_repeats": 1,
    "evidence_alpha": 0.05,
    "validation_min_per_class": 3,
    "unsupervised": {"variance": 0.8, "max_components": 20, "k_min": 2, "k_max": 4,
                     "min_cluster_fraction": 0.05},
}  # fmt: skip


def table(n: int = 120, seed: int = 0, role: str = "discovery", cohort: str = "syn"):
    """Features + labels: IDH shifts lesion-wide features; within IDH-mutant, 1p/19q shifts
    feature 3; two imaging subtypes (features 4-7) carry MGMT; habitat fraction carries MGMT."""
    rng = np.random.default_rng(seed)
    idh = rng.random(n) < 0.5
    codel = idh & (rng.random(n) < 0.5)
    cluster = rng.random(n) < 0.5
    mgmt = np.where(cluster, rng.random(n) < 0.85, rng.random(n) < 0.15)
    X = rng.normal(size=(n, 8))
    X[:, :3] += 1.8 * idh[:, None]
    X[:, 3] += 2.5 * codel  # only defined among IDH-mutant tumours
    X[:, 4:8] += 3.0 * cluster[:, None]
    cols = [f"lesion_wide__adc__whole_tumor__f{i}" for i in range(8)]
    feats = pd.DataFrame(X, columns=cols)
    feats["habitat__all__tumor_core__hyper__fraction"] = np.clip(
        0.3 + 0.15 * mgmt + 0.05 * rng.normal(size=n), 0, 1
    )
    ids = pd.DataFrame({"cohort": cohort, "subject": [f"{cohort}{i:03d}" for i in range(n)],
                        "session": "01", "role": role, "site": cohort, "scanner": ""})  # fmt: skip
    labels = pd.DataFrame({
        "cohort": cohort, "subject": ids["subject"],
        "idh": np.where(idh, "mutant", "wildtype"),
        "codeletion_1p19q": np.where(codel, "codeleted", "intact"),
        "mgmt": np.where(mgmt, "methylated", "unmethylated"),
    })  # fmt: skip
    return pd.concat([ids, feats], axis=1), labels


MARKERS = {
    "codeletion_1p19q": {
        "primary": "maps_logistic",
        "within": {"idh": "mutant"},
        "strategies": {"maps_logistic": {"model": "logistic", "features": ["^lesion_wide__"]}},
    },
    "mgmt": {
        "primary": "subtypes",
        "strategies": {
            "subtypes": {
                "model": "subtypes",
                "features": ["^lesion_wide__"],
                "tested": ["^habitat__.*__fraction$"],
            },  # fmt: skip
            "maps_lasso": {"model": "lasso", "features": ["^lesion_wide__"]},
        },
    },
}


def test_1p19q_is_analysed_within_idh_mutant_only(tmp_path: Path) -> None:
    features, labels = table()
    s = strategies_of(MARKERS, "codeletion_1p19q")[0]
    row = run_strategy(features, labels, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path))
    n_mut = int((labels["idh"] == "mutant").sum())
    assert row["within"] == "idh=mutant" and row["n_discovery"] == 120
    assert row["n_within"] == n_mut == row["n"]  # every IDH-wildtype row left out
    assert row["n_pos"] == int((labels["codeletion_1p19q"] == "codeleted").sum())
    assert row["auc"] > 0.8
    preds = read_tsv(tmp_path / "predictions.tsv", dtype={"subject": str})
    assert set(preds["subject"]) == set(labels.loc[labels["idh"] == "mutant", "subject"])
    # Too few in the subgroup: a status that states the subgroup and its size.
    few = labels.copy()
    few.loc[few["idh"] == "mutant", "idh"] = "wildtype"
    few.loc[few.index[:10], "idh"] = "mutant"
    row = run_strategy(features, few, s, SETTINGS, set(), StrategyOutputs.in_dir(tmp_path / "f"))
    assert (
        row["status"] == "too_few_per_class"
        and "within idh=mutant (n=10 of 120)" in (row["message"])
    )
    # A value outside the vocabulary must not silently select nobody.
    bad = {**MARKERS["codeletion_1p19q"], "within": {"idh": "mutated"}}
    with pytest.raises(ConfigError, match="mutated"):
        run_strategy(features, labels, strategies_of({"codeletion_1p19q": bad},
                     "codeletion_1p19q")[0], SETTINGS, set(),
                     StrategyOutputs.in_dir(tmp_path / "b"))  # fmt: skip


def test_subtypes_strategy_finds_the_planted_association(tmp_path: Path) -> None:
    features, labels = table()
    s = strategies_of(MARKERS, "mgmt")[0]
    out = StrategyOutputs.in_dir(tmp_path)
    row = run_strategy(features, labels, s, SETTINGS, set(), out)
    assert row["status"] == "ok" and row["k_subtypes"] == 2
    assoc = read_tsv(out.coefficients)
    assert list(assoc["test"]) == ["subtype_fisher", "kruskal"]
    assert assoc["q_value"].max() < 1e-6  # 85% vs 15% methylated in two clear clusters
    # Benjamini-Hochberg against statsmodels on the same p-values.
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.5])
    ok = ~np.isnan(p)
    np.testing.assert_allclose(bh_fdr(p)[ok], multipletests(p[ok], method="fdr_bh")[1])
    # Labels never enter the clustering: shuffled MGMT gives the same subtypes, no evidence.
    shuffled = labels.assign(mgmt=labels["mgmt"].sample(frac=1, random_state=0).to_numpy())
    out2 = StrategyOutputs.in_dir(tmp_path / "shuffled")
    row2 = run_strategy(features, shuffled, s, SETTINGS, set(), out2)
    a = read_tsv(out.predictions, dtype={"subject": str})
    b = read_tsv(out2.predictions, dtype={"subject": str})
    assert (a["subtype"] == b["subtype"]).all()
    assert verdict({**row2, "model": "subtypes"}, True, 0.05)[0] == "no evidence"
    assert verdict({**row, "model": "subtypes"}, True, 0.05)[0] == "evidence"


def test_subtypes_validate_on_discovery_centroids(tmp_path: Path) -> None:
    disc_f, disc_l = table(seed=1)
    val_f, val_l = table(n=60, seed=2, role="validation", cohort="val")
    feats, labels = pd.concat([disc_f, val_f]), pd.concat([disc_l, val_l])
    s = strategies_of(MARKERS, "mgmt")[0]
    out = StrategyOutputs.in_dir(tmp_path)
    run_strategy(feats, labels, s, SETTINGS, set(), out)
    payload = joblib.load(out.model)
    assert payload["trained_on"] == ["syn"]
    metrics, preds = validate_cohort(payload, feats, labels, "mgmt", "val", min_per_class=3,
                                     n_boot=50, seed=0)  # fmt: skip
    assert len(preds) == 60 and set(preds["subtype"]) == {1, 2}
    fisher = metrics[metrics["test"].str.startswith("subtype")]
    assert fisher["p_value"].iloc[0] < 1e-3


def test_verdicts_and_permutation_resolution(tmp_path: Path) -> None:
    base = {"status": "ok", "model": "lasso", "auc": 0.403, "auc_ci_low": 0.335,
            "auc_ci_high": 0.476}  # fmt: skip
    # The UCSF-PDGM MGMT case: interval entirely below 0.5 is never evidence.
    assert verdict({**base, "permutation_p": 0.01, "n_permutations": 200}, True, 0.05)[0] == (
        "no evidence"
    )
    good = {**base, "auc": 0.9, "auc_ci_low": 0.8, "auc_ci_high": 0.97}
    assert verdict({**good, "permutation_p": 1 / 201, "n_permutations": 200}, True, 0.05)[0] == (
        "evidence"
    )
    assert verdict({**good, "permutation_p": 0.06, "n_permutations": 200}, True, 0.05)[0] == (
        "no evidence"
    )
    assert verdict(good, False, 0.05)[0] == "evidence"  # comparison: interval above 0.5
    assert verdict({**good, "auc_ci_low": 0.45}, False, 0.05)[0] == "no evidence"
    assert verdict({"status": "too_few_per_class", "message": "x"}, True, 0.05)[0] == "not run"
    # p = (1 + b) / (n + 1): a strong signal reaches exactly 1 / (n + 1).
    features, labels = table()
    X = features[[c for c in features if c.startswith("lesion_wide")] + ["site"]]
    y = (labels["idh"] == "mutant").to_numpy().astype(int)
    pipe = build_pipeline("logistic", batch="site")
    res = permutation_control(pipe, {"model__C": [0.1, 1.0]}, X, y, 0.95, n_permutations=9,
                              seed=3)  # fmt: skip
    assert res["permutation_p"] == pytest.approx(0.1) and res["n_permutations"] == 9
    assert 0.3 < res["shuffled_auc_mean"] < 0.7


def test_permutations_stop_once_no_evidence_is_certain() -> None:
    """A primary without signal stops as soon as its p cannot return to alpha: same verdict as
    the full run, fewer nested CVs; a real signal still gets every permutation (issue 23 time)."""
    features, labels = table()
    X = features[[c for c in features if c.startswith("lesion_wide")] + ["site"]]
    y = (labels["idh"] == "mutant").to_numpy().astype(int)
    pipe = build_pipeline("logistic", batch="site")
    grid = {"model__C": [1.0]}
    kw = {"n_permutations": 39, "outer_folds": 3, "inner_folds": 2, "seed": 5}
    full = permutation_control(pipe, grid, X, y, 0.5, **kw)
    early = permutation_control(pipe, grid, X, y, 0.5, alpha=0.05, **kw)
    assert full["n_permutations"] == 39 and full["permutation_p"] > 0.05
    assert early["n_permutations"] < 20 and early["permutations_planned"] == 39
    # b / m (Besag & Clifford), never below the full run's lower bound (1 + b) / 40
    assert early["permutation_p"] > 0.05 and early["permutation_p"] >= 3 / 40
    strong = permutation_control(pipe, grid, X, y, 0.99, alpha=0.05, **kw)
    assert strong["n_permutations"] == 39 and strong["permutation_p"] == pytest.approx(1 / 40)
    row = {"status": "ok", "model": "lasso", "auc": 0.5, "auc_ci_low": 0.4, "auc_ci_high": 0.6}
    basis = verdict({**row, **early}, True, 0.05)
    assert basis[0] == "no evidence" and "of 39 permutations: stopped" in basis[1]


def test_summary_never_selects_a_primary_without_evidence(tmp_path: Path) -> None:
    features, labels = table()
    noise = labels.assign(codeletion_1p19q=np.where(np.arange(120) % 2, "codeleted", "intact"))
    markers = {"codeletion_1p19q": MARKERS["codeletion_1p19q"]}
    s = strategies_of(markers, "codeletion_1p19q")[0]
    out = StrategyOutputs.in_dir(tmp_path)
    run_strategy(features, noise, s, SETTINGS, set(), out)
    summary = marker_summary(features, noise, markers, "codeletion_1p19q", [out.cv_metrics],
                             SETTINGS, set())  # fmt: skip
    rec = summary.iloc[0]
    assert rec["role"] == "primary" and rec["permutations_planned"] == 9
    assert rec["verdict"] == "no evidence" and not rec["selected"]
    assert "permutation p" in rec["verdict_basis"] or "below 0.5" in rec["verdict_basis"]


@pytest.mark.parametrize("model,grid", [("logistic", {"model__C": [0.01, 0.1, 1.0]}),
                                        ("lasso", {"model__C": [0.05, 0.2, 1.0]})])  # fmt: skip
def test_lean_grid_search_matches_gridsearchcv(model: str, grid: dict) -> None:
    features, labels = table(n=90, seed=5)
    X = features[[c for c in features if c.startswith(("lesion_wide", "habitat"))] + ["site"]]
    y = (labels["idh"] == "mutant").to_numpy().astype(int)
    pipe = build_pipeline(model, batch="site", seed=4)
    best, params = fit_tuned(pipe, grid, X, y, 3, 21)
    gs = GridSearchCV(pipe, grid, cv=StratifiedKFold(3, shuffle=True, random_state=21),
                      scoring="roc_auc").fit(X, y)  # fmt: skip
    assert params == gs.best_params_
    np.testing.assert_allclose(best.predict_proba(X), gs.best_estimator_.predict_proba(X),
                               rtol=0, atol=1e-12)  # fmt: skip


def test_who_cns5_of_the_demo_matches_the_planted_types() -> None:
    """Labels tables of the default demo (blanks included) + planted midline location."""
    plan = plan_demo({}, 20241125)
    agree, total, blank = 0, 0, 0
    for cohort in ("demo_a", "demo_b"):
        lab = labels_table(plan, cohort)
        lab = lab.mask(lab == "")
        first = plan[(plan["cohort"] == cohort) & (plan["session"] == "01")]
        types = who_cns5_types(lab, pd.Series(first["midline"].to_numpy(), index=first["subject"]))
        m = types.merge(first[["subject", "who_cns5_planted"]], on="subject")
        hit = m["who_cns5_code"] == m["who_cns5_planted"]
        agree += int(hit.sum())
        total += len(m)
        # Every disagreement is a subject whose deciding label is blank (not derivable).
        assert (m.loc[~hit, "who_cns5_code"] == "not_derivable").all()
        blank += int((~hit).sum())
    assert total == 60 and agree == 59 and blank == 1


def test_midline_flag_from_location_features() -> None:
    loc = "location__all__whole_tumor__"
    df = pd.DataFrame({f"{loc}lobe_fraction_deep": [0.7, 0.6, 0.0, np.nan],
                       f"{loc}lobe_fraction_brainstem": [0.2, 0.0, 0.1, 0.0],
                       f"{loc}centroid_mni_x": [1.0, 24.0, -30.0, 0.0]})  # fmt: skip
    assert midline_flags(df).tolist()[:3] == [True, False, False]
    assert pd.isna(midline_flags(df).iloc[3])


def test_strategy_dataclass_carries_within() -> None:
    s = strategies_of(MARKERS, "codeletion_1p19q")[0]
    assert isinstance(s, Strategy) and dict(s.within) == {"idh": "mutant"} and s.supervised
