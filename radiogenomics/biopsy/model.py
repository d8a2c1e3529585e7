"""Biopsy stage: sample-level marker models with subject-grouped cross-validation.

Samples of one subject share the patient's biology, scanner and session, so they are never
split between training and test folds: outer folds are `StratifiedGroupKFold` over subjects (and
checked), hyper-parameters are tuned by an inner grouped CV on the training subjects only, and
the AUC's confidence interval resamples subjects (cluster bootstrap), not samples. The model is
a scikit-learn Pipeline: median impute -> standardise -> logistic (L2) or LASSO (L1) logistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from radiogenomics.biopsy.features import DENSE_STATS, SphereParams, feature_columns
from radiogenomics.biopsy.table import SAMPLE_MARKERS
from radiogenomics.cohort.auc import bootstrap_auc_ci
from radiogenomics.cohort.lasso import lasso_logistic
from radiogenomics.cohort.models import fit_tuned

DEFAULT_GRID = {"model__C": [0.05, 0.2, 1.0]}


def make_pipeline(model: str = "lasso", C: float = 0.2, seed: int = 0) -> Pipeline:
    """impute -> scale -> logistic ('logistic', L2) or LASSO logistic ('lasso', L1)."""
    if model == "lasso":
        est = lasso_logistic(C=C, seed=seed)
    elif model == "logistic":
        est = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
    else:
        raise ValueError(f"unknown biopsy model {model!r} (lasso, logistic)")
    return Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("model", est)]
    )


def sample_targets(features: pd.DataFrame, marker: str) -> tuple[np.ndarray, np.ndarray]:
    """(y as 0/1 for the samples with a known value, boolean mask of those samples)."""
    if marker not in features.columns:
        raise ValueError(f"marker column {marker!r} not in the biopsy features")
    pos, neg = SAMPLE_MARKERS[marker]
    values = features[marker]
    known = values.isin([pos, neg]).to_numpy()
    return (values[known] == pos).to_numpy().astype(int), known


def grouped_splits(
    y: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified subject-grouped folds; raises if any subject lands in both train and test."""
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    for cls in (0, 1):
        if len(np.unique(groups[y == cls])) < 2:
            raise ValueError(f"class {cls} occurs in fewer than 2 subjects: cannot cross-validate")
    n = max(2, min(int(folds), n_groups))
    cv = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
    splits = list(cv.split(np.zeros(len(y)), y, groups))
    for tr, te in splits:
        shared = set(groups[tr]) & set(groups[te])
        if shared:
            raise RuntimeError(f"subjects in both train and test folds: {sorted(shared)}")
    return splits


def fit_grouped(
    pipe: Pipeline,
    grid: dict,
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    inner_folds: int = 3,
    seed: int = 0,
) -> tuple[Pipeline, dict]:
    """Fit on all given rows, C tuned by an inner subject-grouped CV (when it is feasible)."""
    # The cohort's tuned fit: impute and scale fitted once per inner split, not per C.
    with sklearn.config_context(skip_parameter_validation=True):
        return fit_tuned(pipe, grid, X, np.asarray(y), inner_folds, seed, groups=groups)


def grouped_cv(
    pipe: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    grid: dict | None = None,
    folds: int = 5,
    inner_folds: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Out-of-fold probabilities: one row per sample (position, group, fold, y, prob)."""
    grid = DEFAULT_GRID if grid is None else grid
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    # One float array for every fold: scikit-learn checks a DataFrame's columns on each call
    # (a fifth of the shuffled-label control's time); the numbers are the same.
    values = np.asarray(X, dtype=float)
    prob = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1)
    for i, (tr, te) in enumerate(grouped_splits(y, groups, folds, seed)):
        best, _ = fit_grouped(pipe, grid, values[tr], y[tr], groups[tr], inner_folds, seed + i)
        prob[te] = best.predict_proba(values[te])[:, 1]
        fold_of[te] = i
    return pd.DataFrame({"group": groups, "fold": fold_of, "y": y, "prob": prob})


def biopsy_metrics(
    y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Sample-level AUC with a subject-cluster bootstrap CI, balanced accuracy, Brier, counts."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    lo, hi = bootstrap_auc_ci(y, p, n_boot, seed, groups=groups) if n_boot else (np.nan, np.nan)
    pred = (p >= 0.5).astype(int)
    return {
        "n_samples": int(len(y)),
        "n_subjects": int(len(np.unique(groups))),
        "n_pos": int(y.sum()),
        "n_neg": int((1 - y).sum()),
        "auc": float(roc_auc_score(y, p)),
        "auc_ci_low": lo,
        "auc_ci_high": hi,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "brier": float(brier_score_loss(y, p)),
    }


@dataclass
class BiopsyModel:
    """A refitted sample-level model and everything needed to apply it to a session's images."""

    pipeline: Pipeline
    features: list[str]
    marker: str
    positive: str
    sphere: SphereParams
    params: dict = field(default_factory=dict)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class for rows holding `features`."""
        return self.pipeline.predict_proba(X[self.features])[:, 1]

    def dense_ready(self) -> bool:
        """True when every feature is a DENSE_STATS statistic (computable for a whole map)."""
        return all(f.partition("__")[2] in DENSE_STATS for f in self.features)

    def coefficients(self) -> pd.DataFrame:
        """Standardised coefficients of the final model (zeros kept: LASSO's selection)."""
        est = self.pipeline.named_steps["model"]
        imp = self.pipeline.named_steps["impute"]
        names = [f for f, keep in zip(self.features, ~np.isnan(imp.statistics_), strict=True)
                 if keep]  # fmt: skip
        return pd.DataFrame({"feature": names, "coefficient": est.coef_[0]})


def run_biopsy_model(
    features: pd.DataFrame,
    marker: str,
    *,
    sphere: SphereParams | None = None,
    stats: tuple[str, ...] = DENSE_STATS,
    sequences: tuple[str, ...] | None = None,
    model: str = "lasso",
    grid: dict | None = None,
    folds: int = 5,
    inner_folds: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
    refit: bool = True,
) -> tuple[dict, pd.DataFrame, BiopsyModel | None]:
    """Grouped CV metrics, the out-of-fold predictions table and the model refitted on all samples.

    Groups are subjects (`cohort/subject`). Predictions: cohort, subject, session, sample_id, fold,
    y, prob. `stats` picks the statistics used as features (DENSE_STATS keeps the model mappable).
    """
    grid = DEFAULT_GRID if grid is None else grid
    y, known = sample_targets(features, marker)
    rows = features[known].reset_index(drop=True)
    cols = feature_columns(rows, stats, sequences)
    if not cols:
        raise ValueError(f"no feature columns for statistics {stats} in the biopsy features")
    groups = (rows["cohort"].astype(str) + "/" + rows["subject"].astype(str)).to_numpy()
    X = rows[cols]
    pipe = make_pipeline(model, seed=seed)
    # Tiny problems: BLAS threads only oversubscribe the cores (as in cohort.models).
    with threadpool_limits(1):
        oof = grouped_cv(
            pipe, X, y, groups, grid=grid, folds=folds, inner_folds=inner_folds, seed=seed
        )
    metrics = {"marker": marker, "model": model, "n_features": len(cols), "folds": folds}
    metrics.update(biopsy_metrics(y, oof["prob"].to_numpy(), groups, n_boot, seed))
    predictions = rows[["cohort", "subject", "session", "sample_id"]].copy()
    predictions["fold"] = oof["fold"].to_numpy()
    predictions["y"] = y
    predictions["prob"] = oof["prob"].to_numpy()
    if not refit:
        return metrics, predictions, None
    with threadpool_limits(1):
        final, params = fit_grouped(pipe, grid, X, y, groups, inner_folds, seed)
    positive = SAMPLE_MARKERS[marker][0]
    fitted = BiopsyModel(final, cols, marker, positive, sphere or SphereParams(), params)
    return metrics, predictions, fitted


def shuffled_label_control(
    features: pd.DataFrame,
    marker: str,
    *,
    n_permutations: int = 10,
    seed: int = 0,
    **kwargs,
) -> dict:
    """Same grouped CV with sample labels permuted: mean and sd of the AUC (expected ~0.5)."""
    rng = np.random.default_rng(seed + 7919)
    pos, neg = SAMPLE_MARKERS[marker]
    known = features[features[marker].isin([pos, neg])].reset_index(drop=True)
    aucs = []
    for i in range(n_permutations):
        shuffled = known.copy()
        shuffled[marker] = rng.permutation(known[marker].to_numpy())
        m, _, _ = run_biopsy_model(
            shuffled, marker, seed=seed + 1000 + i, n_boot=0, refit=False, **kwargs
        )
        aucs.append(m["auc"])
    arr = np.array(aucs)
    return {
        "shuffled_auc_mean": float(arr.mean()),
        "shuffled_auc_sd": float(arr.std(ddof=1)) if len(arr) > 1 else float("nan"),
        "n_permutations": int(n_permutations),
    }
