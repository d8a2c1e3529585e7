"""Report stage, Markers category: all markers side by side, the review's figures as context."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from radiogenomics.report.cohorts import MARKERS
from radiogenomics.report.style import apply_style, colour_for, save_figure

SHAPES = ("o", "^", "v", "D", "P", "X", "<", ">")
SUMMARY_KEYS = (
    "n",
    "n_pos",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "balanced_accuracy",
    "brier",
    "calibration_slope",
)


def load_review_reference(path: str | Path) -> pd.DataFrame:
    """The review's per-marker figures (config/review_reference.yaml); blanks stay NaN."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    rows = [{"marker": m, **(v or {})} for m, v in (data.get("markers") or {}).items()]
    cols = [
        "marker",
        "biology",
        "review_strategy",
        "review_metric",
        "review_value",
        "review_source",
    ]
    df = pd.DataFrame(rows)
    for col in cols:
        if col not in df:
            df[col] = np.nan
    df["review_value"] = pd.to_numeric(df["review_value"], errors="coerce")
    return df[cols]


def metrics_summary(df: pd.DataFrame) -> dict[str, float]:
    """Headline metrics from a metrics table: wide one-row, per-repeat rows (mean AUC and
    2.5-97.5 percentiles across repeats), or long metric/value."""
    if {"metric", "value"} <= set(df.columns):
        values = pd.to_numeric(df["value"], errors="coerce")
        long = dict(zip(df["metric"].astype(str), values, strict=True))
        return {k: float(long[k]) for k in SUMMARY_KEYS if k in long}
    if "auc" not in df.columns or df.empty:
        return {}
    if "set" in df.columns and (df["set"] == "overall").any():
        df = df[df["set"] == "overall"]
    if len(df) == 1:
        rec = df.iloc[0]
        return {k: float(rec[k]) for k in SUMMARY_KEYS if k in df.columns and pd.notna(rec[k])}
    auc = pd.to_numeric(df["auc"], errors="coerce").dropna()
    out = {
        "auc": float(auc.mean()),
        "auc_ci_low": float(auc.quantile(0.025)),
        "auc_ci_high": float(auc.quantile(0.975)),
    }
    for k in ("n", "n_pos"):
        if k in df.columns:
            out[k] = float(pd.to_numeric(df[k], errors="coerce").max())
    for k in ("balanced_accuracy", "brier", "calibration_slope"):
        if k in df.columns:
            out[k] = float(pd.to_numeric(df[k], errors="coerce").mean())
    return out


def _read(path: Path) -> pd.DataFrame:
    """A TSV, or an empty table when the file is a failure placeholder."""
    return pd.read_csv(path, sep="\t") if path.stat().st_size else pd.DataFrame()


def collect_marker_metrics(markers_root: str | Path) -> pd.DataFrame:
    """Headline CV metrics of every `{marker}/{strategy}/cv_metrics.tsv` under `markers_root`."""
    rows = []
    for path in sorted(Path(markers_root).glob("*/*/cv_metrics.tsv")):
        summary = metrics_summary(_read(path))
        rows.append({"marker": path.parent.parent.name, "strategy": path.parent.name, **summary})
    return pd.DataFrame(rows, columns=["marker", "strategy", *SUMMARY_KEYS])


def collect_validation_metrics(validation_root: str | Path) -> pd.DataFrame:
    """Headline metrics of every `{marker}/{cohort}/metrics.tsv` under `validation_root`."""
    rows = []
    for path in sorted(Path(validation_root).glob("*/*/metrics.tsv")):
        df = _read(path)
        if "harmonisation" in df.columns:
            groups = list(df.groupby("harmonisation", sort=True))
        else:
            groups = [("", df)]
        for harm, sub in groups:
            rows.append(
                {
                    "marker": path.parent.parent.name,
                    "cohort": path.parent.name,
                    "harmonisation": harm,
                    **metrics_summary(sub),
                }
            )
    return pd.DataFrame(rows, columns=["marker", "cohort", "harmonisation", *SUMMARY_KEYS])


def _auc_text(rec: pd.Series) -> str:
    """`0.81 (0.74-0.88)`, or blank."""
    if pd.isna(rec.get("auc")):
        return ""
    ci = ""
    if pd.notna(rec.get("auc_ci_low")) and pd.notna(rec.get("auc_ci_high")):
        ci = f" ({rec['auc_ci_low']:.2f}-{rec['auc_ci_high']:.2f})"
    return f"{rec['auc']:.2f}{ci}"


def marker_summary(
    cv: pd.DataFrame, validation: pd.DataFrame, review: pd.DataFrame
) -> pd.DataFrame:
    """One row per marker and strategy: our CV and validation AUCs next to the review's figure."""
    rows = []
    order = {m: i for i, m in enumerate(MARKERS)}
    markers = sorted(
        set(cv["marker"]) | set(validation["marker"]), key=lambda m: (order.get(m, 99), m)
    )
    for marker in markers:
        rev = review[review["marker"] == marker]
        rev = rev.iloc[0] if len(rev) else pd.Series(dtype=object)
        val = validation[validation["marker"] == marker]
        val_text = "; ".join(
            f"{r.cohort}{f' [{r.harmonisation}]' if r.harmonisation else ''}: "
            f"{_auc_text(r._asdict())}"
            for r in val.itertuples(index=False)
        )
        strategies = cv[cv["marker"] == marker]
        if strategies.empty:
            strategies = pd.DataFrame([{"marker": marker, "strategy": ""}])
        for _, rec in strategies.iterrows():
            rows.append(
                {
                    "marker": marker,
                    "strategy": rec.get("strategy", ""),
                    "n": rec.get("n"),
                    "n_pos": rec.get("n_pos"),
                    "cv_auc": rec.get("auc"),
                    "cv_auc_ci": _auc_text(rec),
                    "validation_auc": val_text,
                    "review_strategy": rev.get("review_strategy", ""),
                    "review_metric": rev.get("review_metric", ""),
                    "review_value": rev.get("review_value", np.nan),
                    "review_source": rev.get("review_source", ""),
                }
            )
    return pd.DataFrame(rows)


def marker_summary_figure(
    cv: pd.DataFrame, validation: pd.DataFrame, review: pd.DataFrame, path: str | Path
) -> None:
    """AUC per marker: CV estimate and interval per strategy, validation AUCs, review figure."""
    apply_style()
    order = {m: i for i, m in enumerate(MARKERS)}
    markers = sorted(
        set(cv["marker"]) | set(validation["marker"]), key=lambda m: (order.get(m, 99), m)
    )
    strategies = sorted(cv["strategy"].dropna().unique())
    fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.7 * max(len(markers), 1)))
    width = 0.6 / max(len(strategies), 1)
    for si, strategy in enumerate(strategies):
        sub = cv[cv["strategy"] == strategy]
        for _, rec in sub.iterrows():
            y = markers.index(rec["marker"]) - 0.3 + width * (si + 0.5)
            if pd.notna(rec.get("auc_ci_low")) and pd.notna(rec.get("auc_ci_high")):
                ax.plot([rec["auc_ci_low"], rec["auc_ci_high"]], [y, y], color=colour_for(si), lw=2)
            # A shape per strategy as well as a colour, so strategies stay apart in greyscale.
            ax.plot(
                rec["auc"],
                y,
                SHAPES[si % len(SHAPES)],
                color=colour_for(si),
                label=f"CV: {strategy}" if rec["marker"] == sub["marker"].iloc[0] else None,
            )
    for j, (_, rec) in enumerate(validation.dropna(subset=["auc"]).iterrows()):
        ax.plot(
            rec["auc"],
            markers.index(rec["marker"]),
            "s",
            mfc="none",
            mec="black",
            ms=8,
            label="external validation" if j == 0 else None,
        )
    shown = review[review["marker"].isin(markers) & review["review_value"].notna()]
    for j, (_, rec) in enumerate(shown.iterrows()):
        ax.plot(
            rec["review_value"],
            markers.index(rec["marker"]),
            "*",
            color="black",
            ms=11,
            label="review (context)" if j == 0 else None,
        )
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.set_yticks(range(len(markers)), markers)
    ax.invert_yaxis()
    ax.set_xlim(0.3, 1.0)
    ax.set_xlabel("ROC AUC (unitless; 0.5 = chance)")
    ax.set_title("Per-marker performance: nested-CV AUC (95% interval) and external validation")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
