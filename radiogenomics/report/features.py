"""Report stage, Features category: family summary, ComBat before/after PCA by site, ICCs."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from radiogenomics.report.style import apply_style, colour_for, save_figure

ID_COLUMNS = ("cohort", "subject", "session")


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Columns named `{family}__{seq}__{roi}__{feature}` (the feature-table contract)."""
    return [c for c in df.columns if c.count("__") >= 3 and not c.startswith("prov__")]


def feature_family_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per family: feature count, sequences, ROIs and the share of missing values."""
    cols = feature_columns(df)
    parts = pd.DataFrame(
        [c.split("__", 3) for c in cols], columns=["family", "seq", "roi", "feature"]
    )
    parts["column"] = cols
    rows = []
    for family, grp in parts.groupby("family", sort=True):
        values = df[grp["column"]].apply(pd.to_numeric, errors="coerce")
        rows.append(
            {
                "family": family,
                "features": len(grp),
                "sequences": ", ".join(sorted(grp["seq"].unique())),
                "rois": ", ".join(sorted(grp["roi"].unique())),
                "missing_pct": 100.0 * float(values.isna().to_numpy().mean())
                if len(df)
                else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["family", "features", "sequences", "rois", "missing_pct"])


def feature_family_figure(summary: pd.DataFrame, n_rows: int, path: str | Path) -> None:
    """Bar chart: features per family, annotated with the share of missing values."""
    apply_style()
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.45 * max(len(summary), 1)))
    y = np.arange(len(summary))
    ax.barh(y, summary["features"], color=[colour_for(i) for i in range(len(summary))])
    for yi, (n, miss) in enumerate(zip(summary["features"], summary["missing_pct"], strict=False)):
        ax.text(n, yi, f"  {n} ({miss:.1f}% missing)", va="center", fontsize=8)
    ax.set_yticks(y, summary["family"])
    ax.invert_yaxis()
    ax.set_xlim(0, max(summary["features"].max() if len(summary) else 1, 1) * 1.4)
    ax.set_xlabel("features (count)")
    ax.set_title(f"Feature families ({n_rows} subject/sessions)")
    fig.tight_layout()
    save_figure(fig, path)


def pca_scores(
    df: pd.DataFrame, columns: list[str], n_components: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """PCA of standardised features (median-imputed; constant/empty columns dropped): scores and
    explained-variance ratios."""
    # numpy, not column-wise pandas: 1 mm radiomics tables have tens of thousands of columns.
    x = df[columns]
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(x[c])]
    if text:
        x = pd.concat([x.drop(columns=text), x[text].apply(pd.to_numeric, errors="coerce")],
                      axis=1)[columns]  # fmt: skip
    arr = x.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN / single-value columns
        keep = np.isfinite(arr).any(axis=0) & (np.nanstd(arr, axis=0, ddof=1) > 0)
        arr = arr[:, keep]
        arr = np.where(np.isnan(arr), np.nanmedian(arr, axis=0), arr)
    z = (arr - arr.mean(axis=0)) / arr.std(axis=0)
    if z.shape[0] < 2 or z.shape[1] == 0:
        return np.zeros((z.shape[0], n_components)), np.zeros(n_components)
    u, s, _ = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    k = min(n_components, len(s))
    scores = np.zeros((z.shape[0], n_components))
    scores[:, :k] = u[:, :k] * s[:k]
    var = s**2
    ratio = np.zeros(n_components)
    ratio[:k] = var[:k] / var.sum() if var.sum() > 0 else 0
    return scores, ratio


def site_r2(scores: np.ndarray, sites: np.ndarray) -> float:
    """Share of PCA-score variance explained by site (between-site / total sum of squares)."""
    scores = np.asarray(scores, float)
    total = ((scores - scores.mean(axis=0)) ** 2).sum()
    if total == 0:
        return 0.0
    between = 0.0
    for site in np.unique(sites):
        sel = sites == site
        between += sel.sum() * ((scores[sel].mean(axis=0) - scores.mean(axis=0)) ** 2).sum()
    return float(between / total)


def site_labels(df: pd.DataFrame, sites: dict[str, str]) -> np.ndarray:
    """Site of each row: a `site` column when present, else the cohort's configured site."""
    if "site" in df.columns:
        return df["site"].astype(str).to_numpy()
    return df["cohort"].astype(str).map(lambda c: sites.get(c, c)).to_numpy()


def combat_pca_table(
    before: pd.DataFrame, after: pd.DataFrame, sites: dict[str, str]
) -> pd.DataFrame:
    """PC1/PC2 scores before and after harmonisation, one row per subject/session and table."""
    out = []
    for name, df in (("before", before), ("after", after)):
        cols = feature_columns(df)
        scores, ratio = pca_scores(df, cols)
        out.append(
            pd.DataFrame(
                {
                    "table": name,
                    **{c: df[c].astype(str).to_numpy() for c in ID_COLUMNS if c in df.columns},
                    "site": site_labels(df, sites),
                    "pc1": scores[:, 0],
                    "pc2": scores[:, 1],
                    "pc1_var": ratio[0],
                    "pc2_var": ratio[1],
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def combat_pca_figure(table: pd.DataFrame, path: str | Path) -> dict[str, float]:
    """PCA before/after ComBat coloured by site; returns the site R^2 of each panel."""
    apply_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    sites = sorted(table["site"].unique())
    r2 = {}
    for ax, name in zip(axes, ("before", "after"), strict=False):
        sub = table[table["table"] == name]
        r2[name] = site_r2(sub[["pc1", "pc2"]].to_numpy(), sub["site"].to_numpy())
        for i, site in enumerate(sites):
            sel = sub["site"] == site
            ax.scatter(
                sub.loc[sel, "pc1"],
                sub.loc[sel, "pc2"],
                s=22,
                color=colour_for(i),
                label=f"{site} (n={int(sel.sum())})",
                alpha=0.85,
            )
        v1, v2 = (sub["pc1_var"].iloc[0], sub["pc2_var"].iloc[0]) if len(sub) else (0, 0)
        ax.set_xlabel(f"PC1 ({100 * v1:.0f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * v2:.0f}% of variance)")
        title = "before harmonisation" if name == "before" else "after ComBat"
        ax.set_title(f"{title}: site explains {100 * r2[name]:.0f}% of PC1-2 variance")
    axes[1].legend(loc="best", fontsize=8, title="site")
    fig.tight_layout()
    save_figure(fig, path)
    return r2


def icc_column(df: pd.DataFrame) -> str:
    """The ICC column of a robustness table (`icc`, or the first column whose name contains it)."""
    for col in df.columns:
        if col.lower() == "icc":
            return col
    for col in df.columns:
        if "icc" in col.lower() and pd.api.types.is_numeric_dtype(df[col]):
            return col
    raise ValueError(f"no ICC column among {list(df.columns)}")


def icc_histogram(icc: pd.DataFrame, path: str | Path) -> dict[str, float]:
    """Histogram of feature ICCs with the Koo & Li (2016) 0.75 'good' and 0.9 'excellent' lines."""
    apply_style()
    col = icc_column(icc)
    values = pd.to_numeric(icc[col], errors="coerce").dropna().clip(-1, 1)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.hist(
        values,
        bins=np.linspace(min(0.0, values.min() if len(values) else 0), 1, 41),
        color=colour_for(4),
    )
    for x, label, c in ((0.75, "0.75 good", 1), (0.9, "0.9 excellent", 5)):
        ax.axvline(x, color=colour_for(c), ls="--", lw=1.2, label=label)
    ax.set_xlabel("intra-class correlation of the feature (unitless)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("features (count)")
    stats = {
        "features": float(len(values)),
        "median_icc": float(values.median()) if len(values) else float("nan"),
        "share_ge_0.75": float((values >= 0.75).mean()) if len(values) else float("nan"),
    }
    ax.set_title(
        f"Feature robustness: {len(values)} features, median ICC {stats['median_icc']:.2f}, "
        f"{100 * stats['share_ge_0.75']:.0f}% >= 0.75"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return stats


def markdown_html(text: str, title: str) -> str:
    """A markdown document (e.g. docs/ibsi_conformance.md) as a standalone HTML page with tables."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;font-size:13px;margin:12px}}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px}"
        "th{background:#eee}</style></head><body>" + body + "</body></html>\n"
    )
