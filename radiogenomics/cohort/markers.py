"""Per-marker analyses (cohort stage): strategies from config/markers.yaml, nested CV, controls.

One strategy = a feature set (regexes on `{family}__{seq}__{roi}__{feature}` names) + a model.
Only discovery rows are used; validation cohorts are touched by `validation.py` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from radiogenomics.cohort.common import (  # noqa: E402
    ID_COLUMNS,
    clinical_columns,
    modelling_table,
    read_inputs,
    select_features,
)
from radiogenomics.cohort.marker_config import load_markers  # noqa: E402
from radiogenomics.cohort.models import (  # noqa: E402
    DEFAULT_GRIDS,
    CVResult,
    binary_metrics,
    build_pipeline,
    coefficient_table,
    fit_tuned,
    nested_cv,
    permutation_control,
)
from radiogenomics.errors import ConfigError  # noqa: E402
from radiogenomics.figures import message_figure, save_figure  # noqa: E402
from radiogenomics.io import atomic_path, read_tsv, write_tsv  # noqa: E402
from radiogenomics.labels import MARKERS  # noqa: E402

log = logging.getLogger(__name__)
METRIC_COLUMNS = [
    "marker",
    "strategy",
    "model",
    "status",
    "message",
    "n",
    "n_pos",
    "n_neg",
    "n_features",
    "outer_folds",
    "repeats",
    "inner_folds",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "auc_mean_repeats",
    "auc_sd_repeats",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "brier",
    "calibration_slope",
    "calibration_intercept",
]


@dataclass(frozen=True)
class Strategy:
    """One marker analysis: feature regexes, model, grid, optional clinical covariates."""

    marker: str
    name: str
    model: str
    features: tuple[str, ...]
    grid: Mapping[str, list]
    covariates: tuple[str, ...] = ()
    k_best: int | None = None


def strategies_of(markers: Mapping[str, dict], marker: str) -> list[Strategy]:
    """The strategies of one marker, in file order (the first is the primary unless named)."""
    out = []
    for name, s in (markers[marker].get("strategies") or {}).items():
        model = s["model"]
        grid = {f"model__{k}": v for k, v in (s.get("grid") or {}).items()} or DEFAULT_GRIDS[model]
        out.append(
            Strategy(
                marker=marker,
                name=name,
                model=model,
                features=tuple(s.get("features") or ()),
                grid=grid,
                covariates=tuple(s.get("covariates") or ()),
                k_best=s.get("k_best"),
            )
        )
    return out


def get_strategy(markers: Mapping[str, dict], marker: str, name: str) -> Strategy:
    """One named strategy of a marker."""
    for s in strategies_of(markers, marker):
        if s.name == name:
            return s
    raise ConfigError(f"marker {marker}: no strategy {name!r} in markers file")


def design_matrix(df: pd.DataFrame, feats: list[str], strategy: Strategy, batch: str):
    """X for the pipeline: features, clinical covariates last, then the batch column."""
    X = df[feats].astype(float).copy()
    clin = clinical_columns(df, strategy.covariates)
    return pd.concat([X, clin, df[[batch]].astype(str)], axis=1)


def strategy_pipeline(strategy: Strategy, settings: Mapping[str, Any], batch: str):
    """The strategy's unfitted Pipeline, the same for cross-validation and the final refit."""
    return build_pipeline(
        strategy.model,
        batch=batch,
        combat=bool(settings["combat"]["enabled"]),
        k_best=strategy.k_best,
        n_clinical=len(strategy.covariates),
        seed=int(settings["seed"]),
    )


def _status_row(strategy: Strategy, status: str, message: str, **extra) -> dict[str, Any]:
    row = {c: np.nan for c in METRIC_COLUMNS}
    row.update(marker=strategy.marker, strategy=strategy.name, model=strategy.model)
    row.update(status=status, message=message, **extra)
    return row


def check_classes(y: np.ndarray, min_per_class: int) -> str:
    """Empty string when both classes have enough rows, else the reason."""
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if min(n_pos, n_neg) < min_per_class:
        return f"too few per class: {n_pos} positive, {n_neg} negative (minimum {min_per_class})"
    return ""


def plot_roc(path: str | Path, y: np.ndarray, res: CVResult, title: str) -> None:
    """ROC of each repeat (thin) and of the mean out-of-fold probability (bold)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for row in res.oof:
        fpr, tpr, _ = roc_curve(y, row)
        ax.plot(fpr, tpr, color="0.7", lw=0.8)
    fpr, tpr, _ = roc_curve(y, res.mean_prob)
    ax.plot(fpr, tpr, color="C0", lw=2, label="mean over repeats")
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right")
    save_figure(fig, path)


def plot_calibration(path: str | Path, y: np.ndarray, p: np.ndarray, title: str) -> None:
    """Reliability diagram of out-of-fold probabilities (quantile bins)."""
    bins = max(2, min(10, int(len(y) // 20)))
    frac, mean_pred = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(mean_pred, frac, "o-", color="C1")
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed fraction", title=title)
    save_figure(fig, path)


@dataclass
class StrategyOutputs:
    """Paths of one strategy's outputs."""

    cv_metrics: str
    predictions: str
    model: str
    roc: str
    calibration: str
    coefficients: str

    @classmethod
    def in_dir(cls, d: str | Path) -> StrategyOutputs:
        """Standard names under results/markers/{marker}/{strategy}/."""
        d = Path(d)
        return cls(
            *(
                str(d / n)
                for n in (
                    "cv_metrics.tsv",
                    "predictions.tsv",
                    "model.joblib",
                    "roc.png",
                    "calibration.png",
                    "coefficients.tsv",
                )
            )
        )


def _write_not_run(out: StrategyOutputs, strategy: Strategy, status: str, message: str) -> None:
    log.warning("%s/%s not run: %s", strategy.marker, strategy.name, message)
    write_tsv(
        pd.DataFrame([_status_row(strategy, status, message)], columns=METRIC_COLUMNS),
        out.cv_metrics,
    )
    write_tsv(pd.DataFrame(columns=[*ID_COLUMNS, "y", "prob"]), out.predictions)
    write_tsv(pd.DataFrame(columns=["feature", "value", "kind"]), out.coefficients)
    with atomic_path(out.model) as tmp:
        joblib.dump({"status": status, "message": message, "pipeline": None}, tmp)
    for fig in (out.roc, out.calibration):
        message_figure(fig, f"{strategy.marker} / {strategy.name}: {message}")


def run_strategy(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    strategy: Strategy,
    settings: Mapping[str, Any],
    dropped: set[str],
    out: StrategyOutputs,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """Nested CV of one strategy on discovery rows; writes every output; returns the metrics row."""
    cv = settings["cv"]
    batch = settings["combat"]["batch_column"]
    df = modelling_table(features, labels, strategy.marker)
    feats = select_features(list(features.columns), strategy.features, dropped)
    if not feats:
        _write_not_run(
            out, strategy, "no_features", f"no feature matches {list(strategy.features)}"
        )
        return _status_row(strategy, "no_features", "no matching features")
    y = df["y"].to_numpy().astype(int)
    reason = check_classes(y, int(settings["min_per_class"]))
    if reason:
        _write_not_run(out, strategy, "too_few_per_class", reason)
        return _status_row(strategy, "too_few_per_class", reason)
    X = design_matrix(df, feats, strategy, batch)
    seed = int(settings["seed"])
    pipe = strategy_pipeline(strategy, settings, batch)
    res = nested_cv(
        pipe,
        dict(strategy.grid),
        X,
        y,
        outer_folds=cv["outer_folds"],
        repeats=cv["repeats"],
        inner_folds=cv["inner_folds"],
        seed=seed,
        n_jobs=n_jobs,
    )
    rep = res.repeat_aucs(y)
    metrics = binary_metrics(y, res.mean_prob, n_boot=int(settings["bootstrap_n"]), seed=seed)
    row = _status_row(
        strategy,
        "ok",
        "",
        n_features=len(feats),
        outer_folds=res.outer_folds,
        repeats=cv["repeats"],
        inner_folds=cv["inner_folds"],
        auc_mean_repeats=float(rep.mean()),
        auc_sd_repeats=float(rep.std(ddof=1)) if len(rep) > 1 else 0.0,
        **metrics,
    )
    write_tsv(pd.DataFrame([row], columns=METRIC_COLUMNS), out.cv_metrics)
    preds = df[ID_COLUMNS].copy()
    preds["y"] = y
    preds["prob"] = res.mean_prob
    write_tsv(preds, out.predictions)
    title = f"{strategy.marker} / {strategy.name}: AUC {metrics['auc']:.3f}"
    plot_roc(out.roc, y, res, title)
    plot_calibration(out.calibration, y, res.mean_prob, title)
    final = refit(pipe, dict(strategy.grid), X, y, cv["inner_folds"], seed)
    write_tsv(coefficient_table(final), out.coefficients)
    with atomic_path(out.model) as tmp:
        joblib.dump(
            {
                "status": "ok",
                "pipeline": final,
                "marker": strategy.marker,
                "strategy": strategy.name,
                "features": feats,
                "covariates": list(strategy.covariates),
                "batch_column": batch,
                "positive_class": MARKERS[strategy.marker][0],
                "trained_on": sorted(set(df["cohort"])),
                "n_train": len(y),
                "sklearn_version": sklearn.__version__,
            },
            tmp,
        )
    return row


def refit(pipe, grid: dict, X: pd.DataFrame, y: np.ndarray, inner_folds: int, seed: int):
    """The deployable model: GridSearchCV over all discovery rows, refit on all of them."""
    with threadpool_limits(1):
        best, _ = fit_tuned(pipe, grid, X, y, inner_folds, seed)
    return best


def choose_strategy(metrics: list[pd.DataFrame], primary: str | None) -> str:
    """The marker's reported strategy: `primary` if it ran, else the first that ran (file order)."""
    ok = [m.iloc[0]["strategy"] for m in metrics if len(m) and m.iloc[0]["status"] == "ok"]
    if primary in ok:
        return str(primary)
    return str(ok[0]) if ok else ""


def marker_summary(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    markers: Mapping[str, dict],
    marker: str,
    metric_paths: list[str],
    settings: Mapping[str, Any],
    dropped: set[str],
    n_jobs: int = 1,
) -> pd.DataFrame:
    """All strategies' metrics + the shuffled-label control of the chosen strategy."""
    tables = [read_tsv(p) for p in metric_paths]
    summary = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    chosen = choose_strategy(tables, markers[marker].get("primary"))
    summary["selected"] = summary["strategy"] == chosen
    control = {
        "shuffled_auc_mean": np.nan,
        "shuffled_auc_sd": np.nan,
        "permutation_p": np.nan,
        "n_permutations": 0,
    }
    if chosen:
        s = get_strategy(markers, marker, chosen)
        df = modelling_table(features, labels, marker)
        feats = select_features(list(features.columns), s.features, dropped)
        y = df["y"].to_numpy().astype(int)
        batch = settings["combat"]["batch_column"]
        X = design_matrix(df, feats, s, batch)
        seed = int(settings["seed"])
        pipe = strategy_pipeline(s, settings, batch)
        cv = settings["cv"]
        observed = float(summary.loc[summary["selected"], "auc_mean_repeats"].iloc[0])
        control = permutation_control(
            pipe,
            dict(s.grid),
            X,
            y,
            observed,
            n_permutations=int(settings["n_permutations"]),
            outer_folds=cv["outer_folds"],
            repeats=int(settings["permutation_repeats"]),
            inner_folds=cv["inner_folds"],
            seed=seed,
            n_jobs=n_jobs,
        )
    for k, v in control.items():
        summary[k] = np.where(summary["selected"], v, np.nan)
    return summary


def run_marker_strategy(
    features: str,
    labels: str,
    dropped: str | None,
    markers_file: str,
    marker: str,
    strategy: str,
    settings: Mapping[str, Any],
    outdir: str,
    threads: int = 1,
) -> None:
    """Rule marker_strategy: one marker/strategy's nested CV and outputs."""
    feats, labs, drop = read_inputs(features, labels, dropped)
    s = get_strategy(load_markers(markers_file), marker, strategy)
    run_strategy(feats, labs, s, settings, drop, StrategyOutputs.in_dir(outdir), n_jobs=threads)


def run_marker_summary(
    features: str,
    labels: str,
    dropped: str | None,
    markers_file: str,
    marker: str,
    metrics: list[str],
    settings: Mapping[str, Any],
    out: str,
    threads: int = 1,
) -> None:
    """Rule marker_summary: all strategies + the shuffled-label control of the selected one."""
    feats, labs, drop = read_inputs(features, labels, dropped)
    markers = load_markers(markers_file)
    table = marker_summary(feats, labs, markers, marker, metrics, settings, drop, threads)
    write_tsv(table, out)
