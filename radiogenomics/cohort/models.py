"""Supervised modelling (cohort stage): pipelines, repeated stratified nested CV, metrics, controls.

Every model is one scikit-learn Pipeline (impute -> ComBat -> scale -> select -> model) so that
imputation medians, ComBat estimates, scaling, feature selection and hyper-parameters are all
learnt from the training rows of each fold only; held-out rows are only ever transformed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from radiogenomics.cohort.auc import bootstrap_auc_ci, rank_auc
from radiogenomics.cohort.harmonise import BatchedRows, ComBatHarmoniser, FrameImputer
from radiogenomics.cohort.lasso import l1_penalty_kwargs

CLINICAL_PREFIX = "clinical__"
DEFAULT_GRIDS: dict[str, dict[str, list]] = {
    "logistic": {"model__C": [0.01, 0.1, 1.0]},
    "lasso": {"model__C": [0.05, 0.2, 1.0]},
    "xgboost": {"model__max_depth": [2, 3]},
    "radscore_clinical": {"model__C": [0.05, 0.2, 1.0]},
}


def make_estimator(model: str, seed: int) -> BaseEstimator:
    """The final estimator of a pipeline by name: logistic, lasso, xgboost, radscore_clinical."""
    if model == "logistic":
        # Newton-Cholesky: the same L2 optimum as lbfgs, ~10x faster on a few features, which
        # the shuffled-label controls (hundreds of nested CVs) need.
        return LogisticRegression(
            C=0.1,
            solver="newton-cholesky",
            class_weight="balanced",
            max_iter=5000,
            random_state=seed,
        )
    if model == "lasso":
        # liblinear shuffles coordinates: seeded, or reruns differ in the 4th digit.
        return LogisticRegression(
            C=0.2,
            solver="liblinear",
            class_weight="balanced",
            max_iter=5000,
            random_state=seed,
            # L1 on every scikit-learn: penalty="l1" before 1.8, l1_ratio=1.0 from 1.8 on.
            **l1_penalty_kwargs(),
        )
    if model == "xgboost":
        from xgboost import XGBClassifier

        # Shallow, shrunk trees: a few hundred subjects cannot support deep interactions.
        return XGBClassifier(
            n_estimators=100,
            max_depth=2,
            learning_rate=0.05,
            subsample=0.8,
            colsample_bytree=0.5,
            n_jobs=1,
            random_state=seed,
            eval_metric="logloss",
            verbosity=0,
        )
    if model == "radscore_clinical":
        return RadscoreClinical(C=0.2, seed=seed)
    raise ValueError(f"unknown model {model!r} (logistic, lasso, xgboost, radscore_clinical)")


class RadscoreClinical(ClassifierMixin, BaseEstimator):
    """LASSO radscore from imaging columns, then logistic regression on radscore + clinical columns.

    The training radscore is out-of-fold (inner CV) so the second stage does not see an overfit
    score; clinical columns are recognised by position (`clinical_idx_`, set by the pipeline).
    """

    def __init__(self, C: float = 0.2, seed: int = 0, n_clinical: int = 0, inner_folds: int = 3):
        self.C = C
        self.seed = seed
        self.n_clinical = n_clinical
        self.inner_folds = inner_folds

    def _lasso(self) -> LogisticRegression:
        return LogisticRegression(
            C=self.C,
            solver="liblinear",
            class_weight="balanced",
            max_iter=5000,
            random_state=self.seed,
            **l1_penalty_kwargs(),
        )

    def fit(self, X, y) -> RadscoreClinical:
        """Fit radscore (LASSO) on imaging columns and the combiner on [radscore, clinical]."""
        X = np.asarray(X, float)
        y = np.asarray(y)
        img, clin = X[:, : X.shape[1] - self.n_clinical], X[:, X.shape[1] - self.n_clinical :]
        self.classes_ = np.unique(y)
        oof = np.zeros(len(y))
        folds = min(self.inner_folds, int(np.bincount(y.astype(int)).min()))
        cv = StratifiedKFold(max(folds, 2), shuffle=True, random_state=self.seed)
        for tr, te in cv.split(img, y):
            oof[te] = self._lasso().fit(img[tr], y[tr]).decision_function(img[te])
        self.radscore_ = self._lasso().fit(img, y)
        self.combiner_ = LogisticRegression(
            class_weight="balanced", max_iter=5000, solver="newton-cholesky"
        )
        self.combiner_.fit(np.column_stack([oof, clin]), y)
        self.coef_ = self.radscore_.coef_
        return self

    def _stage2(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        img, clin = X[:, : X.shape[1] - self.n_clinical], X[:, X.shape[1] - self.n_clinical :]
        return np.column_stack([self.radscore_.decision_function(img), clin])

    def predict_proba(self, X) -> np.ndarray:
        """Probability of each class from the combiner."""
        return self.combiner_.predict_proba(self._stage2(X))

    def predict(self, X) -> np.ndarray:
        """Class with the higher probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def build_pipeline(
    model: str,
    *,
    batch: str = "site",
    combat: bool = True,
    unseen: str = "reference",
    k_best: int | None = None,
    n_clinical: int = 0,
    seed: int = 0,
) -> Pipeline:
    """impute -> ComBat -> scale -> select -> model, all fitted on training rows only."""
    est = make_estimator(model, seed)
    if isinstance(est, RadscoreClinical):
        est.set_params(n_clinical=n_clinical)
    select: Any = "passthrough"
    if k_best and model != "radscore_clinical":
        select = SelectKBest(f_classif, k=k_best)
    return Pipeline(
        [
            ("impute", FrameImputer(batch=batch)),
            (
                "combat",
                ComBatHarmoniser(batch=batch, enabled=combat, unseen=unseen, as_frame=False),
            ),
            ("scale", StandardScaler()),
            ("select", select),
            ("model", est),
        ]
    )


def _response(est, X) -> np.ndarray:
    """What the roc_auc scorer ranks: decision_function when the estimator has one."""
    if hasattr(est, "decision_function"):
        return np.asarray(est.decision_function(X), float).reshape(len(X), -1)[:, -1]
    return np.asarray(est.predict_proba(X), float)[:, 1]


def _prefix_and_model(pipe: Pipeline) -> tuple[Pipeline | None, BaseEstimator]:
    """The transforming steps (None when there are none) and the final estimator."""
    steps = pipe.steps
    return (Pipeline(steps[:-1]) if len(steps) > 1 else None), steps[-1][1]


def take_rows(X, rows: np.ndarray):
    """Rows by position of a frame (or anything answering `.iloc`), an array or BatchedRows."""
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _fit_split(prefix, model, params: dict, X, y: np.ndarray, rows: np.ndarray):
    """(fitted prefix or None, its transform of the rows) for one training set."""
    Xr = take_rows(X, rows)
    if prefix is None:
        return None, np.asarray(Xr) if not isinstance(Xr, pd.DataFrame) else Xr
    fitted = clone(prefix)
    return fitted, fitted.fit_transform(Xr, y[rows])


def _transform(prefix, X):
    return X if prefix is None else prefix.transform(X)


def _assemble(pipe: Pipeline, prefix, est) -> Pipeline:
    """A fitted Pipeline with the original step names from a fitted prefix and estimator."""
    steps = [] if prefix is None else list(prefix.steps)
    return Pipeline([*steps, (pipe.steps[-1][0], est)])


def fit_tuned(
    pipe: Pipeline,
    grid: dict,
    X: pd.DataFrame,
    y: np.ndarray,
    inner: int,
    seed: int,
    groups: np.ndarray | None = None,
):
    """Inner grid search on one training set (stratified folds, mean ROC AUC, first best on ties)
    and the best pipeline refit on all of it; returns (pipeline, best parameters).

    With `groups` (biopsy samples of one subject) the inner folds are stratified and grouped,
    at most as many as there are subjects in the rarer class; under 2 the pipeline is fitted
    untuned with its own parameters.

    The same search as GridSearchCV(scoring="roc_auc"), organised so that the transforming steps
    (impute, ComBat, scale, select), which do not depend on the model's parameters, are fitted
    once per inner split instead of once per grid point and split: the shuffled-label controls
    repeat this search hundreds of times. Grids over other steps' parameters use GridSearchCV.
    """
    y = np.asarray(y).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        if groups is None:
            folds = max(2, min(inner, int(np.bincount(y).min())))
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        else:
            groups = np.asarray(groups)
            folds = min(inner, *(len(np.unique(groups[y == c])) for c in (0, 1)))
            cv = StratifiedGroupKFold(max(folds, 2), shuffle=True, random_state=seed)
        if not grid or folds < 2:
            return clone(pipe).fit(X, y), {}
        last = pipe.steps[-1][0]
        if any(not k.startswith(f"{last}__") for k in grid):
            gs = GridSearchCV(clone(pipe), grid, cv=cv, scoring="roc_auc", n_jobs=1, refit=True)
            gs.fit(X, y, groups=groups)
            return gs.best_estimator_, gs.best_params_
        prefix, model = _prefix_and_model(pipe)
        candidates = list(ParameterGrid(grid))
        strip = len(last) + 2
        scores = np.full((len(candidates), folds), np.nan)
        for j, (a, b) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            fitted, Xa = _fit_split(prefix, model, {}, X, y, a)
            Xb = _transform(fitted, take_rows(X, b))
            for i, params in enumerate(candidates):
                est = clone(model).set_params(**{k[strip:]: v for k, v in params.items()})
                scores[i, j] = rank_auc(y[b], _response(est.fit(Xa, y[a]), Xb))
        mean = scores.mean(axis=1)
        best = int(np.argmax(np.where(np.isnan(mean), -np.inf, mean)))
        params = candidates[best]
        fitted, Xall = _fit_split(prefix, model, {}, X, y, np.arange(len(y)))
        est = clone(model).set_params(**{k[strip:]: v for k, v in params.items()}).fit(Xall, y)
        return _assemble(pipe, fitted, est), params


def as_batched_rows(pipe, grid: dict, X):
    """X as BatchedRows when `pipe` starts with a FrameImputer and every grid key is the model's
    (fit_tuned's own search, not GridSearchCV): folds then index one float array, the same
    numbers without pandas' cost per call. Anything else comes back unchanged."""
    if not isinstance(X, pd.DataFrame) or not isinstance(pipe, Pipeline):
        return X
    first, last = pipe.steps[0][1], pipe.steps[-1][0]
    if not isinstance(first, FrameImputer) or first.batch not in X.columns:
        return X
    if any(not k.startswith(f"{last}__") for k in grid):
        return X
    return BatchedRows.from_frame(X, first.batch)


def _outer_split(pipe, grid, X, y, tr, te, inner, seed) -> tuple[np.ndarray, dict]:
    """Fit on the outer training rows, predict the outer test rows."""
    # Parameter validation of every estimator call was a third of a small nested CV's time;
    # the pipelines are built by this module, so their parameters are known to be valid.
    with sklearn.config_context(skip_parameter_validation=True):
        best, params = fit_tuned(pipe, grid, take_rows(X, tr), y[tr], inner, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return best.predict_proba(take_rows(X, te))[:, 1], params


@dataclass
class CVResult:
    """Out-of-fold probabilities per repeat (repeats x n) and the chosen parameters per fold."""

    oof: np.ndarray
    params: list[dict] = field(default_factory=list)
    outer_folds: int = 0

    @property
    def mean_prob(self) -> np.ndarray:
        """Out-of-fold probability averaged over repeats."""
        return np.nanmean(self.oof, axis=0)

    def repeat_aucs(self, y: np.ndarray) -> np.ndarray:
        """AUC of each repeat's out-of-fold predictions."""
        return np.array([rank_auc(y, row) for row in self.oof])


def nested_cv(
    pipe: Pipeline,
    grid: dict,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    outer_folds: int = 5,
    repeats: int = 5,
    inner_folds: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
) -> CVResult:
    """Repeated stratified nested CV: inner GridSearchCV tunes, outer folds estimate."""
    y = np.asarray(y).astype(int)
    X = as_batched_rows(pipe, grid, X)
    folds = max(2, min(outer_folds, int(np.bincount(y).min())))
    rskf = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(rskf.split(np.zeros(len(y)), y))
    jobs = (
        delayed(_outer_split)(pipe, grid, X, y, tr, te, inner_folds, seed + i)
        for i, (tr, te) in enumerate(splits)
    )
    # Small problems: BLAS threads only oversubscribe the cores (40x slower lbfgs measured).
    with threadpool_limits(1):
        results = Parallel(n_jobs=n_jobs)(jobs)
    oof = np.full((repeats, len(y)), np.nan)
    params = []
    for i, ((_, te), (prob, p)) in enumerate(zip(splits, results, strict=True)):
        oof[i // folds, te] = prob
        params.append(p)
    return CVResult(oof=oof, params=params, outer_folds=folds)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Logistic recalibration of y on logit(p): slope (ideal 1) and intercept (ideal 0)."""
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    # Unpenalised fit: the recalibration model must not shrink the slope itself.
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(logit, np.asarray(y).astype(int))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def binary_metrics(
    y: np.ndarray, p: np.ndarray, *, n_boot: int = 1000, seed: int = 0, threshold: float = 0.5
) -> dict[str, float]:
    """AUC with bootstrap CI, balanced accuracy, sensitivity, specificity, Brier, calibration."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, float)
    pred = (p >= threshold).astype(int)
    lo, hi = bootstrap_auc_ci(y, p, n_boot, seed)
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "n": int(len(y)),
        "n_pos": int(y.sum()),
        "n_neg": int((1 - y).sum()),
        "auc": float(roc_auc_score(y, p)),
        "auc_ci_low": lo,
        "auc_ci_high": hi,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "sensitivity": float(pred[y == 1].mean()),
        "specificity": float(1 - pred[y == 0].mean()),
        "brier": float(brier_score_loss(y, p)),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }


def permutation_control(
    pipe: Pipeline,
    grid: dict,
    X: pd.DataFrame,
    y: np.ndarray,
    observed_auc: float,
    *,
    n_permutations: int = 20,
    outer_folds: int = 5,
    repeats: int = 1,
    inner_folds: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    alpha: float | None = None,
) -> dict[str, float]:
    """Shuffled-label control: the same nested CV on permuted labels; mean AUC and p-value.

    With `alpha`, the permutations stop as soon as p > alpha is certain: once b shuffled AUCs
    reach the observed one, the full run's (1 + b_total) / (n + 1) cannot fall back to alpha, so
    the verdict is the one all `n_permutations` would give (a marker without signal then costs
    a dozen runs instead of 200); p is then Besag & Clifford's sequential b / m (Biometrika 1991),
    raised to the full run's bound (1 + b) / (n + 1) where that is larger.
    """
    rng = np.random.default_rng(seed + 7919)
    X = as_batched_rows(pipe, grid, X)
    aucs = []
    exceed = 0
    for i in range(n_permutations):
        yp = rng.permutation(np.asarray(y).astype(int))
        res = nested_cv(
            pipe,
            grid,
            X,
            yp,
            outer_folds=outer_folds,
            repeats=repeats,
            inner_folds=inner_folds,
            seed=seed + 1000 + i,
            n_jobs=n_jobs,
        )
        aucs.append(float(np.mean(res.repeat_aucs(yp))))
        exceed += int(aucs[-1] >= observed_auc)
        if alpha is not None and exceed > 0 and (1 + exceed) / (n_permutations + 1) > alpha:
            break
    aucs_arr = np.array(aucs)
    if len(aucs) < n_permutations:
        # never below what the full run would report, so the verdict cannot change
        p_value = max(exceed / len(aucs), (1 + exceed) / (n_permutations + 1))
    else:
        # Phipson & Smyth: (b + 1) / (m + 1) never reports p = 0 from finitely many permutations.
        p_value = (1 + exceed) / (n_permutations + 1)
    return {
        "shuffled_auc_mean": float(aucs_arr.mean()) if len(aucs) else float("nan"),
        "shuffled_auc_sd": float(aucs_arr.std(ddof=1)) if len(aucs) > 1 else float("nan"),
        "permutation_p": float(p_value),
        "n_permutations": len(aucs),
        "permutations_planned": int(n_permutations),
    }


def selected_feature_names(pipe: Pipeline) -> list[str]:
    """Names of the columns that reach the final estimator of a fitted pipeline."""
    names = list(pipe.named_steps["combat"].feature_names_in_)
    sel = pipe.named_steps["select"]
    if sel != "passthrough" and sel is not None:
        names = [n for n, keep in zip(names, sel.get_support(), strict=True) if keep]
    return names


def coefficient_table(pipe: Pipeline) -> pd.DataFrame:
    """Coefficients (standardised scale) or importances of the refit model, largest first."""
    names = selected_feature_names(pipe)
    est = pipe.named_steps["model"]
    if isinstance(est, RadscoreClinical):
        img = names[: len(names) - est.n_clinical]
        rows = list(zip(img, est.radscore_.coef_[0], strict=True))
        rows += list(zip(["radscore", *names[len(img) :]], est.combiner_.coef_[0], strict=True))
        kind = "coefficient"
    elif hasattr(est, "coef_"):
        rows, kind = list(zip(names, est.coef_[0], strict=True)), "coefficient"
    else:
        rows, kind = list(zip(names, est.feature_importances_, strict=True)), "importance"
    df = pd.DataFrame(rows, columns=["feature", "value"])
    df["kind"] = kind
    df = df[df["value"] != 0]
    return df.reindex(df["value"].abs().sort_values(ascending=False, kind="stable").index)
