"""Report stage, Cohorts category: subjects per cohort/site/session, labels available, failures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from radiogenomics.labels import MARKERS as LABEL_MARKERS
from radiogenomics.report.style import NEUTRAL, apply_style, colour_for, save_figure

# Canonical markers of docs/developer_contract.md, in the report's display order.
MARKERS = tuple(LABEL_MARKERS)
FAILURE_COLUMNS = ["cohort", "subject", "session", "stage", "file", "message"]


def read_intake_report(path: str | Path) -> pd.DataFrame:
    """The intake report with IDs as strings and blanks as empty strings."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for col in ("has_images", "has_labels"):
        if col in df:
            df[col] = df[col].str.lower().eq("true")
    return df


def read_failures(path: str | Path | None) -> pd.DataFrame:
    """failures.tsv when it exists and has rows, else an empty table with its columns."""
    if path is None or not Path(path).exists() or Path(path).stat().st_size == 0:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def read_label_issues(paths: list[str | Path]) -> pd.DataFrame:
    """Every cohort's labels-table problems in one table (empty files are skipped)."""
    frames = [
        pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
        for p in paths
        if Path(p).exists() and Path(p).stat().st_size
    ]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _status_group(status: str) -> str:
    """Collapse `failed:<stage>` into `failed`; a feature-table subject without labels counts with
    the imaged ones without labels."""
    if status.startswith("failed"):
        return "failed"
    return "images_without_labels" if status == "features_without_labels" else status


def cohort_counts(intake: pd.DataFrame, sites: dict[str, str]) -> pd.DataFrame:
    """Per cohort: site, subjects/sessions with images, and how many are ok/failed/unlabelled."""
    rows = []
    for cohort, grp in intake.groupby("cohort", sort=True):
        status = grp["status"].map(_status_group)
        imaged = grp[status != "labels_without_images"]
        rows.append(
            {
                "cohort": cohort,
                "site": sites.get(cohort, cohort),
                "subjects": imaged["subject"].nunique(),
                "sessions": len(imaged),
                "ok": int((status == "ok").sum()),
                "images_without_labels": int((status == "images_without_labels").sum()),
                "failed": int((status == "failed").sum()),
                "labels_without_images": int(
                    pd.to_numeric(grp.loc[status == "labels_without_images", "n_subjects"]).sum()
                    if "n_subjects" in grp
                    else (status == "labels_without_images").sum()
                ),
            }
        )
    return pd.DataFrame(rows)


def label_availability(intake: pd.DataFrame, markers: tuple[str, ...] = MARKERS) -> pd.DataFrame:
    """Per cohort and marker: imaged subjects with a known label, and the count of each class."""
    rows = []
    imaged = intake[intake["status"] != "labels_without_images"]
    for cohort, grp in imaged.groupby("cohort", sort=True):
        per_subject = grp.drop_duplicates("subject")
        for marker in markers:
            col = f"label_{marker}"
            values = per_subject[col] if col in per_subject else pd.Series([], dtype=str)
            known = values[values != ""]
            classes = "; ".join(f"{k}: {v}" for k, v in known.value_counts().sort_index().items())
            rows.append(
                {
                    "cohort": cohort,
                    "marker": marker,
                    "subjects": len(per_subject),
                    "known": len(known),
                    "unknown": len(per_subject) - len(known),
                    "classes": classes,
                }
            )
    return pd.DataFrame(
        rows, columns=["cohort", "marker", "subjects", "known", "unknown", "classes"]
    )


def cohort_overview_figure(
    counts: pd.DataFrame, availability: pd.DataFrame, path: str | Path
) -> None:
    """Two panels: sessions per cohort by intake status; share of subjects labelled per marker."""
    apply_style()
    n = max(len(counts), 1)
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(12, max(3.4, 1.6 + 0.55 * n)), gridspec_kw={"width_ratios": [1, 1.3]}
    )
    statuses = [("ok", "ok"), ("images_without_labels", "images, no labels"), ("failed", "failed")]
    y = np.arange(len(counts))
    left = np.zeros(len(counts))
    for i, (col, label) in enumerate(statuses):
        vals = counts[col].to_numpy(float) if len(counts) else np.zeros(0)
        ax1.barh(y, vals, left=left, color=colour_for([2, 0, 5][i]), label=label, height=0.6)
        left += vals
    label_only = counts.get("labels_without_images", pd.Series(0, index=counts.index))
    for yi, (total, lab_only) in enumerate(zip(left, label_only, strict=True)):
        if lab_only:
            ax1.text(
                total, yi, f"  +{lab_only} with labels only", va="center", fontsize=8, color=NEUTRAL
            )
    ax1.set_yticks(y, [f"{c} ({s})" for c, s in zip(counts["cohort"], counts["site"], strict=True)])
    ax1.set_ylim(len(counts) - 0.5, -0.5)
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("subject/sessions (count)")
    ax1.set_title("Intake status per cohort (site)")
    ax1.set_xlim(0, max(left.max() if len(left) else 1, 1) * 1.7)
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8)

    if len(availability):
        frac = availability.pivot(index="cohort", columns="marker", values="known")
        total = availability.pivot(index="cohort", columns="marker", values="subjects")
        cols = [m for m in MARKERS if m in frac.columns]
        frac, total = frac[cols], total[cols]
        ratio = (frac / total.where(total > 0)).to_numpy(float)
        im = ax2.imshow(ratio, vmin=0, vmax=1, cmap="cividis", aspect="auto")
        for (r, c), v in np.ndenumerate(frac.to_numpy()):
            shade = "white" if (np.nan_to_num(ratio[r, c]) < 0.6) else "black"
            ax2.text(
                c,
                r,
                f"{int(v)}/{int(total.iat[r, c])}",
                ha="center",
                va="center",
                fontsize=8,
                color=shade,
            )
        ax2.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
        ax2.set_yticks(range(len(frac)), frac.index)
        fig.colorbar(im, ax=ax2, label="fraction of imaged subjects labelled")
    ax2.set_title("Known labels per marker (labelled/imaged subjects)")
    fig.tight_layout()
    save_figure(fig, path)
