"""Report stage, QC category: per-subject QC metrics collected, outliers flagged, overlays."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from radiogenomics.paths import entities_from_path
from radiogenomics.report.style import FLAG_COLOUR, apply_style, colour_for, save_figure

ID_COLUMNS = ["cohort", "subject", "session"]


def _wide(df: pd.DataFrame) -> pd.DataFrame:
    """One row per file: long metric/value tables and per-sequence rows become columns."""
    df = df.drop(columns=[c for c in ID_COLUMNS if c in df.columns])
    if {"metric", "value"} <= set(df.columns):
        key = df["metric"].astype(str)
        for extra in ("sequence", "seq", "roi"):
            if extra in df.columns:
                key = df[extra].astype(str) + "_" + key
        return pd.DataFrame([pd.to_numeric(df["value"], errors="coerce").to_numpy()], columns=key)
    if len(df) > 1:
        tag = next((c for c in ("sequence", "seq", "roi") if c in df.columns), None)
        if tag is not None:
            flat = {}
            for _, rec in df.iterrows():
                for col, val in rec.drop(tag).items():
                    flat[f"{rec[tag]}_{col}"] = val
            return pd.DataFrame([flat])
    return df.head(1).reset_index(drop=True)


def collect_qc_metrics(paths: list[str | Path]) -> pd.DataFrame:
    """One row per subject/session from `qc/metrics.tsv` files; empty files (failed subjects)
    stay as rows with `qc_status` = failed."""
    rows = []
    for path in sorted(map(str, paths)):
        cohort, subject, session = entities_from_path(path)
        ids = pd.DataFrame([{"cohort": cohort, "subject": subject, "session": session}])
        p = Path(path)
        if not p.exists() or p.stat().st_size == 0:
            rows.append(ids.assign(qc_status="failed"))
            continue
        wide = _wide(pd.read_csv(p, sep="\t"))
        rows.append(pd.concat([ids, wide.reset_index(drop=True)], axis=1).assign(qc_status="ok"))
    if not rows:
        return pd.DataFrame(columns=[*ID_COLUMNS, "qc_status"])
    df = pd.concat(rows, ignore_index=True)
    front = [*ID_COLUMNS, "qc_status"]
    return df[front + [c for c in df.columns if c not in front]]


def numeric_metrics(df: pd.DataFrame) -> list[str]:
    """Numeric metric columns (ids, flags and constant columns excluded)."""
    skip = {*ID_COLUMNS, "qc_status", "outlier", "outlier_metrics"}
    cols = []
    for col in df.columns:
        if col in skip or df[col].dtype == bool:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        if values.notna().sum() >= 1 and values.nunique(dropna=True) > 1:
            cols.append(col)
    return cols


def robust_z(values: np.ndarray) -> np.ndarray:
    """Iglewicz-Hoaglin modified z-score 0.6745 (x - median) / MAD; mean absolute deviation x 1.2533
    when the MAD is zero; zero when every value is equal; NaN stays NaN."""
    x = np.asarray(values, float)
    ok = np.isfinite(x)
    z = np.full(x.shape, np.nan)
    if ok.sum() < 3:
        return np.where(ok, 0.0, np.nan)
    med = np.median(x[ok])
    mad = np.median(np.abs(x[ok] - med))
    if mad > 0:
        z[ok] = 0.6745 * (x[ok] - med) / mad
        return z
    mean_ad = np.mean(np.abs(x[ok] - med))
    z[ok] = 0.0 if mean_ad == 0 else (x[ok] - med) / (1.253314 * mean_ad)
    return z


def flag_outliers(df: pd.DataFrame, threshold: float = 3.5) -> pd.DataFrame:
    """Add `outlier` (any metric with |robust z| > threshold, or a failed subject) and the metrics
    responsible, pooled over all cohorts so a whole deviating site stands out too."""
    out = df.copy()
    reasons: list[list[str]] = [[] for _ in range(len(out))]
    for col in numeric_metrics(out):
        z = robust_z(pd.to_numeric(out[col], errors="coerce").to_numpy())
        for i in np.flatnonzero(np.abs(np.nan_to_num(z)) > threshold):
            reasons[i].append(f"{col} (z={z[i]:+.1f})")
    failed = (
        out["qc_status"].eq("failed").to_numpy() if "qc_status" in out else np.zeros(len(out), bool)
    )
    for i in np.flatnonzero(failed):
        reasons[i].append("failed")
    out["outlier"] = [bool(r) for r in reasons]
    out["outlier_metrics"] = ["; ".join(r) for r in reasons]
    return out


def qc_metrics_figure(df: pd.DataFrame, path: str | Path, max_metrics: int = 16) -> None:
    """One strip plot per metric, subjects grouped by cohort, outliers in vermillion and named."""
    apply_style()
    metrics = numeric_metrics(df)[:max_metrics]
    ncol = min(4, max(len(metrics), 1))
    nrow = max(math.ceil(len(metrics) / ncol), 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.8 * nrow), squeeze=False)
    cohorts = sorted(df["cohort"].unique())
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    for ax, col in zip(axes.flat, metrics, strict=False):
        values = pd.to_numeric(df[col], errors="coerce")
        for i, cohort in enumerate(cohorts):
            sel = (df["cohort"] == cohort).to_numpy() & values.notna().to_numpy()
            xs = i + rng.uniform(-0.15, 0.15, sel.sum())
            flagged = df.loc[sel, "outlier_metrics"].str.contains(col, regex=False).to_numpy()
            ax.scatter(xs[~flagged], values[sel][~flagged], s=14, color=colour_for(i), alpha=0.8)
            ax.scatter(xs[flagged], values[sel][flagged], s=30, color=FLAG_COLOUR, marker="D")
            names = df.loc[sel, "subject"][flagged]
            for x, v, s in zip(xs[flagged], values[sel][flagged], names, strict=True):
                ax.annotate(s, (x, v), fontsize=7, xytext=(4, 0), textcoords="offset points")
        ax.set_xticks(range(len(cohorts)), cohorts, rotation=20, ha="right")
        ax.set_xlim(-0.6, len(cohorts) - 0.4)
        ax.set_title(col, fontsize=9)
        ax.set_ylabel("value (units as in the metric name)", fontsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    if not metrics:
        axes.flat[0].text(0.5, 0.5, "no numeric QC metrics in this run", ha="center", va="center")
    fig.suptitle(
        "QC metrics per subject/session (outliers: vermillion diamonds, |robust z| > threshold)",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path)


def overlay_name(path: str | Path) -> str:
    """`{cohort}_sub-{subject}_ses-{session}` for a file inside a subject directory."""
    cohort, subject, session = entities_from_path(path)
    return f"{cohort}_sub-{subject}_ses-{session}"


def select_overlays(flags: pd.DataFrame, overlays: list[str | Path], max_n: int) -> list[Path]:
    """Non-empty overlays, outliers first, then the rest in subject order, at most `max_n`."""
    flagged = (
        {
            f"{c}_sub-{s}_ses-{t}"
            for c, s, t in flags.loc[
                flags.get("outlier", pd.Series(dtype=bool)).astype(bool), ID_COLUMNS
            ].itertuples(index=False)
        }
        if len(flags)
        else set()
    )
    usable = [
        Path(p) for p in sorted(map(str, overlays)) if Path(p).exists() and Path(p).stat().st_size
    ]
    usable.sort(key=lambda p: (overlay_name(p) not in flagged, overlay_name(p)))
    return usable[:max_n]
