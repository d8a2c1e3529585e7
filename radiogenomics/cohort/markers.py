"""Per-marker analyses (cohort stage): strategies from config/markers.yaml, nested CV, controls,
honest verdicts.

One strategy = a feature set (regexes on `{family}__{seq}__{roi}__{feature}` names) + a model:
a supervised model (logistic, lasso, xgboost, radscore_clinical) in repeated nested CV, a 3-D CNN
on tumour-centred crops (`cnn`, the same outer folds), or the unsupervised-first association of
data-driven subtypes and habitat fractions with the marker (`subtypes`). A marker may be analysed
within a subgroup (`within`, e.g. 1p/19q within IDH-mutant tumours). Only discovery rows are used;
validation cohorts are touched by `validation.py` alone.

Verdicts (`marker_summary`): a supervised strategy whose out-of-fold AUC interval lies entirely
below 0.5, or (primary) whose shuffled-label permutation p exceeds `evidence_alpha`, or
(comparison, no permutations) whose interval reaches 0.5, shows "no evidence"; a subtypes
strategy shows evidence when its smallest FDR q is at most `evidence_alpha`. Only a primary with
evidence is `selected`; nothing is selected otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    usable_features,
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
SUPERVISED = ("logistic", "lasso", "xgboost", "radscore_clinical", "cnn")
METRIC_COLUMNS = [
    "marker",
    "strategy",
    "model",
    "status",
    "message",
    "within",
    "n_discovery",
    "n_within",
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
    "k_subtypes",
    "association_q_min",
    "association_best",
]


@dataclass(frozen=True)
class Strategy:
    """One marker analysis: feature regexes, model, grid, optional clinical covariates; for
    `subtypes` the tested features, for `cnn` its markers.yaml keys (`options`)."""

    marker: str
    name: str
    model: str
    features: tuple[str, ...]
    grid: Mapping[str, list]
    covariates: tuple[str, ...] = ()
    k_best: int | None = None
    tested: tuple[str, ...] = ()
    repeats: int | None = None
    within: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def supervised(self) -> bool:
        """A classifier with out-of-fold probabilities (everything except `subtypes`)."""
        return self.model in SUPERVISED


def strategies_of(markers: Mapping[str, dict], marker: str) -> list[Strategy]:
    """The strategies of one marker, in file order (the first is the primary unless named)."""
    out = []
    within = dict(markers[marker].get("within") or {})
    for name, s in (markers[marker].get("strategies") or {}).items():
        model = s["model"]
        grid = {f"model__{k}": v for k, v in (s.get("grid") or {}).items()} or DEFAULT_GRIDS.get(
            model, {}
        )
        out.append(
            Strategy(
                marker=marker,
                name=name,
                model=model,
                features=tuple(s.get("features") or ()),
                grid=grid,
                covariates=tuple(s.get("covariates") or ()),
                k_best=s.get("k_best"),
                tested=tuple(s.get("tested") or ()),
                repeats=s.get("repeats"),
                within=within,
                options=dict(s),
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
    if strategy.model == "cnn":
        from radiogenomics.deep.crops import CropSettings
        from radiogenomics.deep.train import cnn_pipeline

        opts = {k: v for k, v in strategy.options.items() if k != "repeats"}
        return cnn_pipeline(opts, int(settings["seed"]), CropSettings.from_config(opts))
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
    row.update(marker=strategy.marker, strategy=strategy.name, model=strategy.model, within="")
    row.update(status=status, message=message, **extra)
    return row


def strategy_rows(
    features: pd.DataFrame, labels: pd.DataFrame, strategy: Strategy
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Discovery rows of the strategy's marker (within its subgroup) and the subgroup sizes."""
    try:
        df = modelling_table(features, labels, strategy.marker, within=strategy.within or None)
    except ValueError as exc:
        where = f"marker {strategy.marker}: within {dict(strategy.within)}"
        raise ConfigError(f"{where}: {exc}") from exc
    return df, dict(df.attrs.get("subgroup", {}))


def load_crops(path: str | Path | None, strategy: Strategy, ids: pd.DataFrame):
    """The cnn strategy's crops in the row order of `ids` (a session without a crop: NaN row)."""
    from radiogenomics.deep.crops import CropSettings, load_crop_set

    if not path:
        raise ConfigError(f"{strategy.marker}/{strategy.name}: cnn strategy without a crops file")
    settings = CropSettings.from_config(strategy.options)
    crops, found = load_crop_set(path, settings).take(ids)
    return crops, found, settings


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


def _write_not_run(
    out: StrategyOutputs, strategy: Strategy, status: str, message: str, **extra
) -> None:
    log.warning("%s/%s not run: %s", strategy.marker, strategy.name, message)
    write_tsv(
        pd.DataFrame([_status_row(strategy, status, message, **extra)], columns=METRIC_COLUMNS),
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
    crops: str | Path | None = None,
) -> dict[str, Any]:
    """One strategy on discovery rows (nested CV, or the subtype association); writes every
    output; returns the metrics row."""
    df, sub = strategy_rows(features, labels, strategy)
    if strategy.model == "subtypes":
        return run_subtypes(df, sub, labels, strategy, settings, dropped, out)
    cv = settings["cv"]
    batch = settings["combat"]["batch_column"]
    if strategy.model == "cnn":
        try:
            X, found, crop_settings = load_crops(crops, strategy, df[ID_COLUMNS])
        except ConfigError as exc:  # no crops file, or one built with other settings
            _write_not_run(out, strategy, "no_features", str(exc), **sub)
            return _status_row(strategy, "no_features", str(exc), **sub)
        feats, skipped = list(crop_settings.channel_names), ""
        if not found.any():
            msg = f"no session has a crop ({crops}): see its crop failures"
            _write_not_run(out, strategy, "no_features", msg, **sub)
            return _status_row(strategy, "no_features", msg, **sub)
    else:
        feats, skipped = usable_features(df, tuple(strategy.features), dropped)
        if not feats:
            msg = f"no usable feature for {list(strategy.features)}" + (
                f" ({skipped})" if skipped else ""
            )
            _write_not_run(out, strategy, "no_features", msg, **sub)
            return _status_row(strategy, "no_features", "no matching features", **sub)
    y = df["y"].to_numpy().astype(int)
    reason = check_classes(y, int(settings["min_per_class"]))
    if reason:
        if sub.get("within"):
            reason += f", within {sub['within']} (n={sub['n_within']} of {sub['n_discovery']})"
        _write_not_run(out, strategy, "too_few_per_class", reason, **sub)
        return _status_row(strategy, "too_few_per_class", reason, **sub)
    if strategy.model != "cnn":
        X = design_matrix(df, feats, strategy, batch)
    seed = int(settings["seed"])
    try:
        pipe = strategy_pipeline(strategy, settings, batch)
    except ConfigError as exc:
        # e.g. a cnn checkpoint that does not fit the network: this strategy is not run (the
        # message names the file), the marker's other strategies are separate jobs.
        _write_not_run(out, strategy, "config_error", str(exc), **sub)
        return _status_row(strategy, "config_error", str(exc), **sub)
    repeats = int(strategy.repeats or cv["repeats"])
    res = nested_cv(
        pipe,
        dict(strategy.grid),
        X,
        y,
        outer_folds=cv["outer_folds"],
        repeats=repeats,
        inner_folds=cv["inner_folds"],
        seed=seed,
        n_jobs=n_jobs,
    )
    rep = res.repeat_aucs(y)
    metrics = binary_metrics(y, res.mean_prob, n_boot=int(settings["bootstrap_n"]), seed=seed)
    row = _status_row(
        strategy,
        "ok",
        skipped if strategy.model != "cnn" else f"{int((~found).sum())} session(s) without a crop",
        n_features=len(feats),
        outer_folds=res.outer_folds,
        repeats=repeats,
        inner_folds=cv["inner_folds"],
        auc_mean_repeats=float(rep.mean()),
        auc_sd_repeats=float(rep.std(ddof=1)) if len(rep) > 1 else 0.0,
        **sub,
        **metrics,
    )
    write_tsv(pd.DataFrame([row], columns=METRIC_COLUMNS), out.cv_metrics)
    preds = df[ID_COLUMNS].copy()
    preds["y"] = y
    preds["prob"] = res.mean_prob
    write_tsv(preds, out.predictions)
    title = f"{strategy.marker} / {strategy.name}: AUC {metrics['auc']:.3f}"
    if sub.get("within"):
        title += f"\nwithin {sub['within']}, n={len(y)}"
    plot_roc(out.roc, y, res, title)
    plot_calibration(out.calibration, y, res.mean_prob, title)
    final = refit(pipe, dict(strategy.grid), X, y, cv["inner_folds"], seed)
    coefficients = (
        coefficient_table(final)
        if strategy.model != "cnn"
        else pd.DataFrame(columns=["feature", "value", "kind"])
    )
    write_tsv(coefficients, out.coefficients)
    payload = {
        "status": "ok",
        "kind": "cnn" if strategy.model == "cnn" else "supervised",
        "pipeline": final,
        "marker": strategy.marker,
        "strategy": strategy.name,
        "features": feats,
        "covariates": list(strategy.covariates),
        "batch_column": batch,
        "positive_class": MARKERS[strategy.marker][0],
        "within": dict(strategy.within),
        "trained_on": sorted(set(df["cohort"])),
        "n_train": len(y),
        "sklearn_version": sklearn.__version__,
    }
    if strategy.model == "cnn":
        payload["crop_options"] = dict(strategy.options)
    with atomic_path(out.model) as tmp:
        joblib.dump(payload, tmp)
    return row


def run_subtypes(
    df: pd.DataFrame,
    sub: dict[str, Any],
    labels: pd.DataFrame,
    strategy: Strategy,
    settings: Mapping[str, Any],
    dropped: set[str],
    out: StrategyOutputs,
) -> dict[str, Any]:
    """The unsupervised-first strategy: subtypes on the features, tests against the marker."""
    from radiogenomics.cohort.subtypes import association_table, fit_subtypes

    batch = settings["combat"]["batch_column"]
    feats = select_features(list(df.columns), strategy.features, dropped)
    tested = select_features(list(df.columns), strategy.tested, dropped)
    if not feats:
        msg = f"no feature matches {list(strategy.features)}"
        _write_not_run(out, strategy, "no_features", msg, **sub)
        return _status_row(strategy, "no_features", msg, **sub)
    y = df["y"].to_numpy().astype(int)
    reason = check_classes(y, int(settings["min_per_class"]))
    if reason:
        _write_not_run(out, strategy, "too_few_per_class", reason, **sub)
        return _status_row(strategy, "too_few_per_class", reason, **sub)
    u = settings["unsupervised"]
    seed = int(settings["seed"])
    model, subtype = fit_subtypes(
        df,
        feats,
        batch,
        seed=seed,
        k_range=range(int(u["k_min"]), int(u["k_max"]) + 1),
        variance=float(u["variance"]),
        max_components=int(u["max_components"]),
        min_fraction=float(u["min_cluster_fraction"]),
        combat=bool(settings["combat"]["enabled"]),
    )
    table = association_table(subtype, df[tested].astype(float), y)
    best = table.loc[table["q_value"].idxmin()] if table["q_value"].notna().any() else None
    row = _status_row(
        strategy,
        "ok",
        "",
        n=len(y),
        n_pos=int(y.sum()),
        n_neg=int((1 - y).sum()),
        n_features=len(feats),
        k_subtypes=model.k,
        association_q_min=float(best["q_value"]) if best is not None else np.nan,
        association_best=f"{best['test']}: {best['feature']}" if best is not None else "",
        **sub,
    )
    write_tsv(pd.DataFrame([row], columns=METRIC_COLUMNS), out.cv_metrics)
    preds = df[ID_COLUMNS].copy()
    preds["y"] = y
    preds["subtype"] = subtype
    scores = model.scores(df)
    for i in range(min(3, scores.shape[1])):
        preds[f"pc{i + 1}"] = scores[:, i]
    write_tsv(preds, out.predictions)
    write_tsv(table, out.coefficients)
    plot_subtypes(out.roc, scores, subtype, y, strategy, model.k)
    plot_association(out.calibration, table, strategy)
    with atomic_path(out.model) as tmp:
        joblib.dump(
            {
                "status": "ok",
                "kind": "subtypes",
                "model": model,
                "pipeline": None,
                "marker": strategy.marker,
                "strategy": strategy.name,
                "features": feats,
                "tested": tested,
                "batch_column": batch,
                "within": dict(strategy.within),
                "trained_on": sorted(set(df["cohort"])),
                "n_train": len(y),
            },
            tmp,
        )
    return row


def plot_subtypes(path, scores, subtype, y, strategy: Strategy, k: int) -> None:
    """PCA scores by subtype (colour) and marker status (filled = positive)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for s in sorted(set(subtype)):
        for cls, mk in ((1, "o"), (0, "x")):
            sel = (subtype == s) & (y == cls)
            ax.scatter(scores[sel, 0], scores[sel, 1], s=14, marker=mk, color=f"C{s - 1}",
                       label=f"subtype {s}, {'positive' if cls else 'negative'}")  # fmt: skip
    ax.set(xlabel="PC1", ylabel="PC2",
           title=f"{strategy.marker} / {strategy.name}: k={k} by silhouette")  # fmt: skip
    ax.legend(fontsize=6)
    save_figure(fig, path)


def plot_association(path, table: pd.DataFrame, strategy: Strategy, top: int = 20) -> None:
    """-log10 q of every test (dashed line: q = 0.05)."""
    shown = table.dropna(subset=["q_value"]).sort_values("q_value", kind="stable").head(top)
    if shown.empty:
        message_figure(path, f"{strategy.marker} / {strategy.name}: no test could be computed")
        return
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.5))
    ax.barh(range(len(shown)), -np.log10(shown["q_value"].clip(lower=1e-12)), color="C0")
    ax.set_yticks(range(len(shown)), [f[-45:] for f in shown["feature"]], fontsize=6)
    ax.axvline(-np.log10(0.05), ls="--", color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="-log10 FDR q", title=f"{strategy.marker} / {strategy.name}: association")
    save_figure(fig, path)


def refit(pipe, grid: dict, X: pd.DataFrame, y: np.ndarray, inner_folds: int, seed: int):
    """The deployable model: the inner grid search over all discovery rows, refit on all."""
    with threadpool_limits(1), sklearn.config_context(skip_parameter_validation=True):
        best, _ = fit_tuned(pipe, grid, X, y, inner_folds, seed)
    return best


def effective_primary(metrics: list[pd.DataFrame], primary: str | None) -> str:
    """The marker's primary strategy if it ran, else the first that ran (file order)."""
    ok = [m.iloc[0]["strategy"] for m in metrics if len(m) and m.iloc[0]["status"] == "ok"]
    if primary in ok:
        return str(primary)
    return str(ok[0]) if ok else ""


# Kept for callers of the former name.
choose_strategy = effective_primary


def verdict(row: Mapping[str, Any], primary: bool, alpha: float) -> tuple[str, str]:
    """("evidence" | "no evidence" | "not run", the reason) of one summary row."""
    if row.get("status") != "ok":
        return "not run", str(row.get("message") or row.get("status"))
    if row.get("model") == "subtypes":
        q = row.get("association_q_min")
        if pd.notna(q) and q <= alpha:
            best = row.get("association_best")
            return "evidence", f"smallest FDR q {q:.3g} <= {alpha:g} ({best})"
        return "no evidence", f"smallest FDR q {q:.3g} > {alpha:g}" if pd.notna(q) else "no test"
    lo, hi = row.get("auc_ci_low"), row.get("auc_ci_high")
    ci = f"AUC {row.get('auc', np.nan):.3f} [{lo:.3f}-{hi:.3f}]"
    if pd.notna(hi) and hi < 0.5:
        return "no evidence", f"{ci}: interval entirely below 0.5"
    p = row.get("permutation_p")
    if primary and pd.notna(p):
        n = int(row.get("n_permutations") or 0)
        planned = row.get("permutations_planned")
        if pd.notna(planned) and n < int(planned):
            runs = f"{n} of {int(planned)} permutations: stopped once p > {alpha:g} was certain"
        else:
            runs = f"{n} permutations"
        if p > alpha:
            return "no evidence", f"{ci}; permutation p {p:.3g} > {alpha:g} ({runs})"
        return "evidence", f"{ci}; permutation p {p:.3g} <= {alpha:g} ({runs})"
    if pd.notna(lo) and lo > 0.5:
        return "evidence", f"{ci}: interval above 0.5 (comparison, no permutation test)"
    return "no evidence", f"{ci}: interval reaches 0.5 (comparison, no permutation test)"


def marker_summary(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    markers: Mapping[str, dict],
    marker: str,
    metric_paths: list[str],
    settings: Mapping[str, Any],
    dropped: set[str],
    n_jobs: int = 1,
    crops: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """All strategies' metrics, the shuffled-label control of the primary, verdicts, selection."""
    tables = [read_tsv(p) for p in metric_paths]
    summary = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    primary = effective_primary(tables, markers[marker].get("primary"))
    summary["role"] = np.where(summary["strategy"] == primary, "primary", "comparison")
    control = {
        "shuffled_auc_mean": np.nan,
        "shuffled_auc_sd": np.nan,
        "permutation_p": np.nan,
        "n_permutations": 0,
        "permutations_planned": 0,
    }
    s = get_strategy(markers, marker, primary) if primary else None
    if s is not None and s.supervised and int(settings["n_permutations"]) > 0:
        df, _ = strategy_rows(features, labels, s)
        y = df["y"].to_numpy().astype(int)
        batch = settings["combat"]["batch_column"]
        if s.model == "cnn":
            X, _, _ = load_crops((crops or {}).get(s.name), s, df[ID_COLUMNS])
        else:
            feats = select_features(list(features.columns), s.features, dropped)
            X = design_matrix(df, feats, s, batch)
        seed = int(settings["seed"])
        pipe = strategy_pipeline(s, settings, batch)
        cv = settings["cv"]
        observed = float(summary.loc[summary["role"] == "primary", "auc_mean_repeats"].iloc[0])
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
            alpha=float(settings["evidence_alpha"]),
        )
    for k, v in control.items():
        summary[k] = np.where(summary["role"] == "primary", v, np.nan)
    alpha = float(settings["evidence_alpha"])
    calls = [verdict(rec, rec["role"] == "primary", alpha) for rec in summary.to_dict("records")]
    summary["verdict"] = [c[0] for c in calls]
    summary["verdict_basis"] = [c[1] for c in calls]
    summary["selected"] = (summary["role"] == "primary") & (summary["verdict"] == "evidence")
    return summary


def run_marker_strategy(
    features: str,
    labels: str,
    dropped: str | None,
    markers_file: str,
    marker: str,
    strategy: str,
    settings: Mapping[str, Any],
    out: StrategyOutputs,
    threads: int = 1,
    crops: str | None = None,
) -> None:
    """Rules marker_strategy / marker_subtypes: one marker/strategy's nested CV (or association)
    and its outputs."""
    feats, labs, drop = read_inputs(features, labels, dropped)
    s = get_strategy(load_markers(markers_file), marker, strategy)
    run_strategy(feats, labs, s, settings, drop, out, n_jobs=threads, crops=crops or None)


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
    crops: Mapping[str, str] | None = None,
) -> None:
    """Rule marker_summary: all strategies, the primary's shuffled-label control, verdicts."""
    feats, labs, drop = read_inputs(features, labels, dropped)
    markers = load_markers(markers_file)
    table = marker_summary(feats, labs, markers, marker, metrics, settings, drop, threads, crops)
    write_tsv(table, out)
