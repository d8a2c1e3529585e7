"""Report stage, Run category: per-rule runtime and peak memory from Snakemake benchmark files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from radiogenomics.report.style import apply_style, colour_for, save_figure

COLUMNS = ["rule", "n", "median_s", "max_s", "total_s", "max_rss_mb"]


def rule_of(path: Path, root: Path) -> str:
    """`benchmarks/rules/<rule>/<job>.tsv` and `benchmarks/rules/<rule>.tsv` both give `<rule>`."""
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """Every benchmark row under `root` with its rule (repeats of one job are kept as rows)."""
    root = Path(root)
    frames = []
    for path in sorted(root.rglob("*.tsv")):
        if path.stat().st_size == 0:
            continue
        df = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
        if "s" not in df.columns:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "rule": rule_of(path, root),
                    "job": str(path.relative_to(root)),
                    "s": pd.to_numeric(df["s"], errors="coerce"),
                    "max_rss": pd.to_numeric(df.get("max_rss", np.nan), errors="coerce"),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["rule", "job", "s", "max_rss"])
    return pd.concat(frames, ignore_index=True)


def summarise_benchmarks(root: str | Path) -> pd.DataFrame:
    """Per rule: jobs, median/max/total wall seconds and largest peak RSS (MB), slowest first."""
    rows = read_benchmarks(root)
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = (
        rows.groupby("rule", sort=True)
        .agg(
            n=("job", "nunique"),
            median_s=("s", "median"),
            max_s=("s", "max"),
            total_s=("s", "sum"),
            max_rss_mb=("max_rss", "max"),
        )
        .reset_index()
    )
    return out.sort_values(["total_s", "rule"], ascending=[False, True]).reset_index(drop=True)[
        COLUMNS
    ]


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (for the README)."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def benchmarks_figure(summary: pd.DataFrame, path: str | Path, top: int = 25) -> None:
    """Total wall time and peak memory of the `top` most time-consuming rules."""
    apply_style()
    sub = summary.head(top)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.32 * max(len(sub), 1)), sharey=True)
    y = np.arange(len(sub))
    ax1.barh(y, sub["total_s"] / 60.0, color=colour_for(4))
    ax1.set_xlabel("total wall time over all jobs (min)")
    ax2.barh(y, sub["max_rss_mb"].fillna(0), color=colour_for(0))
    ax2.set_xlabel("largest peak RSS of one job (MB)")
    ax1.set_yticks(y, [f"{r} (n={n})" for r, n in zip(sub["rule"], sub["n"], strict=False)])
    ax1.invert_yaxis()
    ax1.set_title("Runtime per rule")
    ax2.set_title("Memory per rule")
    fig.tight_layout()
    save_figure(fig, path)
