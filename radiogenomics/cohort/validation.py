"""External validation (cohort stage): discovery-trained models applied unchanged to each
validation cohort.

Every strategy that ran on the discovery cohorts is validated (the marker's `selected` one, if
any, is flagged; the others are comparisons, with their discovery verdict). The saved pipeline is
only ever asked to `predict_proba`; nothing is refitted. Two variants are reported for feature
models: `reference` (an unseen site is harmonised label-free to the discovery reference from its
own features) and `none` (the unseen site's features enter as they are); a cnn reads per-session
z-scored crops (no ComBat: `none`). A `subtypes` strategy assigns the validation subjects to the
discovery subtypes (discovery-fitted embedding and centroids) and repeats its association tests.
The marker's subgroup (`within`) applies to the validation rows too.
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
    "role",
    "selected",
    "discovery_verdict",
    "within",
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
    "test",
    "p_value",
]


def predict(payload: Mapping, df: pd.DataFrame, variant: str, crops=None) -> np.ndarray:
    """Probabilities of the positive class from the frozen pipeline (a copy, never refitted)."""
    pipe = copy.deepcopy(payload["pipeline"])
    if payload.get("kind") == "cnn":
        if crops is None:
            raise ValueError(f"{payload['strategy']}: cnn validation needs the crops file")
        X, _ = crops.take(df[ID_COLUMNS])
        return pipe.predict_proba(X)[:, 1]
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
    crops=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, predictions) of one marker's model on one validation cohort, both variants."""
    base = {"marker": marker, "cohort": cohort, "strategy": payload.get("strategy", "")}
    df = modelling_table(
        features[features["cohort"] == cohort],
        labels,
        marker,
        role="validation",
        within=payload.get("within") or None,
    )
    base["within"] = df.attrs["subgroup"]["within"]
    if payload.get("pipeline") is None and payload.get("model") is None:
        msg = f"no discovery model: {payload.get('message', 'not trained')}"
        return _status(base, "no_model", msg), pd.DataFrame(columns=[*ID_COLUMNS, "y"])
    y = df["y"].to_numpy().astype(int)
    if len(y) == 0 or min((y == 1).sum(), (y == 0).sum()) < min_per_class:
        msg = f"too few per class: {int((y == 1).sum())} positive, {int((y == 0).sum())} negative"
        return _status(base, "too_few_per_class", msg), pd.DataFrame(columns=[*ID_COLUMNS, "y"])
    preds = df[ID_COLUMNS].copy()
    preds["y"] = y
    if payload.get("kind") == "subtypes":
        return _validate_subtypes(payload, df, y, base, preds)
    rows = []
    variants = ("none",) if payload.get("kind") == "cnn" else VARIANTS
    for variant in variants:
        p = predict(payload, df, variant, crops)
        preds[f"prob_{variant}"] = p
        m = binary_metrics(y, p, n_boot=n_boot, seed=seed)
        rows.append({**base, "harmonisation": variant, "status": "ok", "message": "", **m})
    return pd.DataFrame(rows, columns=METRICS), preds


def _validate_subtypes(payload, df, y, base, preds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validation subjects assigned to the discovery subtypes; the association tests again."""
    from radiogenomics.cohort.subtypes import association_table

    model = payload["model"]
    subtype = model.assign(df)
    preds["subtype"] = subtype
    tested = df.reindex(columns=payload["tested"]).astype(float)
    table = association_table(subtype, tested, y)
    rows = []
    for rec in table.to_dict("records"):
        rows.append({**base, "harmonisation": "reference", "status": "ok",
                     "message": rec["detail"], "n": int(len(y)), "n_pos": int(y.sum()),
                     "n_neg": int((1 - y).sum()), "test": f"{rec['test']}: {rec['feature']}",
                     "p_value": rec["q_value"]})  # fmt: skip
    return pd.DataFrame(rows, columns=METRICS), preds


def _status(base: Mapping, status: str, message: str) -> pd.DataFrame:
    row = {c: np.nan for c in METRICS}
    row.update(base, harmonisation="", status=status, message=message)
    return pd.DataFrame([row], columns=METRICS)


def plot_validation_roc(path, preds: pd.DataFrame, metrics: pd.DataFrame, title: str) -> None:
    """ROC of every validated strategy (harmonised variant where there is one; the selected one
    bold), or a message figure when none is computable."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    ok = metrics[(metrics["status"] == "ok") & metrics["auc"].notna()]
    if preds.empty or ok.empty:
        msg = metrics["message"].iloc[0] if len(metrics) else "nothing to validate"
        message_figure(path, f"{title}: {msg}")
        return
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for strategy, rows in ok.groupby("strategy", sort=False):
        variant = "reference" if (rows["harmonisation"] == "reference").any() else "none"
        rec = rows[rows["harmonisation"] == variant].iloc[0]
        sub = preds[preds["strategy"] == strategy]
        fpr, tpr, _ = roc_curve(sub["y"], sub[f"prob_{variant}"])
        bold = bool(rec.get("selected"))
        name = f"{strategy}{' (selected)' if bold else ''} [{variant}]"
        ax.plot(fpr, tpr, lw=2.2 if bold else 1.0, label=f"{name}: AUC {rec['auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=6)
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
    crops: Mapping[str, str] | None = None,
) -> None:
    """Rule external_validation: every strategy that ran on the discovery cohorts, applied to
    one validation cohort (the selected one flagged)."""
    from pathlib import Path

    import joblib

    from radiogenomics.deep.crops import load_crop_set
    from radiogenomics.io import read_tsv, write_tsv

    feats, labs, _ = read_inputs(features, labels, None)
    summ = read_tsv(summary)
    if "status" in summ.columns:
        summ = summ[summ["status"] == "ok"]
    tables, predictions = [], []
    for rec in summ.to_dict("records"):
        strategy = str(rec["strategy"])
        payload = joblib.load(Path(model_dir) / strategy / "model.joblib")
        crop_set = None
        if payload.get("kind") == "cnn":
            crop_set = load_crop_set((crops or {})[strategy])
        metrics, preds = validate_cohort(
            payload,
            feats,
            labs,
            marker,
            cohort,
            min_per_class=int(settings["validation_min_per_class"]),
            n_boot=int(settings["bootstrap_n"]),
            seed=int(settings["seed"]),
            crops=crop_set,
        )
        role = rec.get("role", "primary" if rec.get("selected") else "comparison")
        metrics = metrics.assign(
            role=role,
            selected=bool(rec.get("selected")),
            discovery_verdict=rec.get("verdict", ""),
        )
        tables.append(metrics[METRICS])
        predictions.append(preds.assign(strategy=strategy))
    if not tables:
        msg = "no strategy ran on the discovery cohorts"
        tables = [_status({"marker": marker, "cohort": cohort, "strategy": ""}, "no_model", msg)]
    metrics = pd.concat(tables, ignore_index=True)
    preds = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    write_tsv(metrics, out_metrics)
    write_tsv(preds, out_predictions)
    plot_validation_roc(out_roc, preds, metrics, f"{marker} on {cohort}")
