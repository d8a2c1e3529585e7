"""External validation (cohort stage): discovery-trained models applied unchanged to each
validation cohort.

The saved pipeline is only ever asked to `predict_proba`; nothing is refitted. Two variants are
reported: `reference` (an unseen site is harmonised label-free to the discovery reference from its
own features) and `none` (the unseen site's features enter as they are).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from radiogenomics.cohort.common import ID_COLUMNS, clinical_columns, modelling_table, read_inputs
from radiogenomics.cohort.models import binary_metrics
from radiogenomics.figures import message_figure, save_figure

VARIANTS = ("reference", "none")
METRICS = [
    "marker",
    "cohort",
    "strategy",
    "harmonisation",
    "status",
    "message",
    "n",
    "n_pos",
    "n_neg",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "brier",
    "calibration_slope",
    "calibration_intercept",
]


def predict(payload: Mapping, df: pd.DataFrame, variant: str) -> np.ndarray:
    """Probabilities of the positive class from the frozen pipeline (a copy, never refitted)."""
    pipe = copy.deepcopy(payload["pipeline"])
    pipe.set_params(combat__unseen=variant)
    X = df.reindex(columns=payload["features"]).astype(float)
    X = pd.concat([X, clinical_columns(df, tuple(payload["covariates"]))], axis=1)
    X[payload["batch_column"]] = df[payload["batch_column"]].astype(str).to_numpy()
    with threadpool_limits(1):
        return pipe.predict_proba(X)[:, 1]


def validate_cohort(
    payload: Mapping,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    marker: str,
    cohort: str,
    *,
    min_per_class: int,
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, predictions) of one marker's model on one validation cohort, both variants."""
    base = {"marker": marker, "cohort": cohort, "strategy": payload.get("strategy", "")}
    df = modelling_table(features[features["cohort"] == cohort], labels, marker, role="validation")
    if payload.get("pipeline") is None:
        msg = f"no discovery model: {payload.get('message', 'not trained')}"
        return _status(base, "no_model", msg), pd.DataFrame(columns=[*ID_COLUMNS, "y"])
    y = df["y"].to_numpy().astype(int)
    if len(y) == 0 or min((y == 1).sum(), (y == 0).sum()) < min_per_class:
        msg = f"too few per class: {int((y == 1).sum())} positive, {int((y == 0).sum())} negative"
        return _status(base, "too_few_per_class", msg), pd.DataFrame(columns=[*ID_COLUMNS, "y"])
    preds = df[ID_COLUMNS].copy()
    preds["y"] = y
    rows = []
    for variant in VARIANTS:
        p = predict(payload, df, variant)
        preds[f"prob_{variant}"] = p
        m = binary_metrics(y, p, n_boot=n_boot, seed=seed)
        rows.append({**base, "harmonisation": variant, "status": "ok", "message": "", **m})
    return pd.DataFrame(rows, columns=METRICS), preds


def _status(base: Mapping, status: str, message: str) -> pd.DataFrame:
    row = {c: np.nan for c in METRICS}
    row.update(base, harmonisation="", status=status, message=message)
    return pd.DataFrame([row], columns=METRICS)


def plot_validation_roc(path, preds: pd.DataFrame, metrics: pd.DataFrame, title: str) -> None:
    """ROC of both harmonisation variants (or a message figure when not computable)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    if preds.empty or "prob_reference" not in preds.columns:
        message_figure(path, f"{title}: {metrics['message'].iloc[0]}")
        return
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for variant, row in zip(VARIANTS, metrics.itertuples(), strict=True):
        fpr, tpr, _ = roc_curve(preds["y"], preds[f"prob_{variant}"])
        ax.plot(fpr, tpr, label=f"{variant}: AUC {row.auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right")
    save_figure(fig, path)


def run_validation(
    features: str,
    labels: str,
    summary: str,
    model_dir: str,
    marker: str,
    cohort: str,
    settings: Mapping,
    out_metrics: str,
    out_predictions: str,
    out_roc: str,
) -> None:
    """Rule external_validation: the marker's selected discovery model on one validation cohort."""
    from pathlib import Path

    import joblib

    from radiogenomics.io import read_tsv, write_tsv

    feats, labs, _ = read_inputs(features, labels, None)
    summ = read_tsv(summary)
    chosen = summ.loc[summ["selected"].astype(bool), "strategy"]
    if chosen.empty:
        payload = {"pipeline": None, "message": "no strategy ran on the discovery cohorts"}
    else:
        payload = joblib.load(Path(model_dir) / str(chosen.iloc[0]) / "model.joblib")
    metrics, preds = validate_cohort(
        payload,
        feats,
        labs,
        marker,
        cohort,
        min_per_class=int(settings["validation_min_per_class"]),
        n_boot=int(settings["bootstrap_n"]),
        seed=int(settings["seed"]),
    )
    write_tsv(metrics, out_metrics)
    write_tsv(preds, out_predictions)
    plot_validation_roc(out_roc, preds, metrics, f"{marker} on {cohort}")
