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


REVIEW_COLUMNS = [
    "marker", "biology", "review_strategy", "method", "metric", "review_value", "review_text",
    "review_ref", "compare",
]  # fmt: skip


def load_review_reference(path: str | Path) -> pd.DataFrame:
    """The review's figures (config/review_reference.yaml), one row per figure (a marker without
    one keeps a row with its strategy); the habitat figures under marker `habitats`."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    rows = []

    def figure_row(marker: str, base: dict, fig: dict) -> dict:
        return {"marker": marker, **base, "method": fig.get("method", ""),
                "metric": fig.get("metric", ""), "review_value": fig.get("value"),
                "review_text": fig.get("text", ""), "review_ref": fig.get("ref", ""),
                "compare": fig.get("compare", "")}  # fmt: skip

    for marker, spec in (data.get("markers") or {}).items():
        spec = spec or {}
        base = {"biology": spec.get("biology", ""),
                "review_strategy": spec.get("review_strategy", "")}  # fmt: skip
        rows += [figure_row(marker, base, fig) for fig in spec.get("figures") or [{}]]
    hab = {"biology": "", "review_strategy": "habitats"}
    rows += [figure_row("habitats", hab, fig) for fig in data.get("habitats") or []]
    df = pd.DataFrame(rows, columns=REVIEW_COLUMNS)
    df["review_value"] = pd.to_numeric(df["review_value"], errors="coerce")
    return df


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


VERDICT_KEYS = (
    "model", "role", "verdict", "verdict_basis", "selected", "within", "n_within", "n_discovery",
    "permutation_p", "n_permutations", "association_q_min", "status",
)  # fmt: skip


def collect_marker_metrics(markers_root: str | Path) -> pd.DataFrame:
    """Headline CV metrics of every `{marker}/{strategy}/cv_metrics.tsv` under `markers_root`,
    with the marker summary's role, verdict and selection when `{marker}/summary.tsv` exists."""
    rows = []
    for path in sorted(Path(markers_root).glob("*/*/cv_metrics.tsv")):
        summary = metrics_summary(_read(path))
        rows.append({"marker": path.parent.parent.name, "strategy": path.parent.name, **summary})
    cv = pd.DataFrame(rows, columns=["marker", "strategy", *SUMMARY_KEYS])
    frames = []
    for path in sorted(Path(markers_root).glob("*/summary.tsv")):
        s = _read(path)
        if len(s) and "strategy" in s:
            keep = [k for k in VERDICT_KEYS if k in s.columns]
            frames.append(s[["strategy", *keep]].assign(marker=path.parent.name))
    if frames:
        cv = cv.merge(pd.concat(frames, ignore_index=True), on=["marker", "strategy"], how="left")
    for k in VERDICT_KEYS:
        if k not in cv.columns:
            cv[k] = np.nan
    return cv


def collect_validation_metrics(validation_root: str | Path) -> pd.DataFrame:
    """Headline metrics of every `{marker}/{cohort}/metrics.tsv` under `validation_root`."""
    rows = []
    for path in sorted(Path(validation_root).glob("*/*/metrics.tsv")):
        df = _read(path)
        if "strategy" not in df.columns:
            df = df.assign(strategy="")
        if "harmonisation" not in df.columns:
            df = df.assign(harmonisation="")
        if "auc" in df.columns:
            df = df[df["auc"].notna()]
        for (strategy, harm), sub in df.groupby(["strategy", "harmonisation"], sort=False):
            rows.append(
                {
                    "marker": path.parent.parent.name,
                    "cohort": path.parent.name,
                    "strategy": strategy,
                    "harmonisation": harm,
                    **metrics_summary(sub),
                }
            )
    cols = ["marker", "cohort", "strategy", "harmonisation", *SUMMARY_KEYS]
    return pd.DataFrame(rows, columns=cols)


def _auc_text(rec: pd.Series) -> str:
    """`0.81 (0.74-0.88)`, or blank."""
    if pd.isna(rec.get("auc")):
        return ""
    ci = ""
    if pd.notna(rec.get("auc_ci_low")) and pd.notna(rec.get("auc_ci_high")):
        ci = f" ({rec['auc_ci_low']:.2f}-{rec['auc_ci_high']:.2f})"
    return f"{rec['auc']:.2f}{ci}"


def _ordered_markers(*frames: pd.DataFrame) -> list[str]:
    order = {m: i for i, m in enumerate(MARKERS)}
    names = set().union(*(set(f["marker"].dropna()) for f in frames if "marker" in f))
    return sorted(names, key=lambda m: (order.get(m, 99), m))


def _fmt(value, spec: str = ".3f") -> str:
    return "" if value is None or pd.isna(value) else format(float(value), spec)


def marker_summary(
    cv: pd.DataFrame, validation: pd.DataFrame, review: pd.DataFrame
) -> pd.DataFrame:
    """One row per marker and strategy: role, verdict, subgroup, CV and validation AUCs, and the
    review's strategy for the marker."""
    rows = []
    for marker in _ordered_markers(cv, validation):
        rev = review[review["marker"] == marker]
        rev = rev.iloc[0] if len(rev) else pd.Series(dtype=object)
        val = validation[validation["marker"] == marker]
        strategies = cv[cv["marker"] == marker]
        if strategies.empty:
            strategies = pd.DataFrame([{"marker": marker, "strategy": ""}])
        for _, rec in strategies.iterrows():
            mine = val[val["strategy"].isin([rec.get("strategy"), ""])]
            val_text = "; ".join(
                f"{r.cohort}{f' [{r.harmonisation}]' if r.harmonisation else ''}: "
                f"{_auc_text(r._asdict())}"
                for r in mine.itertuples(index=False)
                if pd.notna(getattr(r, "auc", np.nan))
            )
            within = rec.get("within")
            rows.append(
                {
                    "marker": marker,
                    "strategy": rec.get("strategy", ""),
                    "role": rec.get("role", ""),
                    "verdict": rec.get("verdict", ""),
                    "selected": bool(rec.get("selected")) and pd.notna(rec.get("selected")),
                    "within": "" if pd.isna(within) else within,
                    "n_within": rec.get("n_within"),
                    "n": rec.get("n"),
                    "n_pos": rec.get("n_pos"),
                    "cv_auc": rec.get("auc"),
                    "cv_auc_ci": _auc_text(rec),
                    "balanced_accuracy": rec.get("balanced_accuracy"),
                    "permutation_p": rec.get("permutation_p"),
                    "association_q_min": rec.get("association_q_min"),
                    "validation_auc": val_text,
                    "verdict_basis": rec.get("verdict_basis", ""),
                    "review_strategy": rev.get("review_strategy", ""),
                }
            )
    return pd.DataFrame(rows)


def _matching(cv: pd.DataFrame, marker: str, compare: str) -> pd.DataFrame:
    """This run's strategies of a marker that a review figure is compared with: the strategy
    name or model contains `compare` (cnn, lasso, radiomics, maps, histogram, radscore)."""
    sub = cv[cv["marker"] == marker]
    if not compare or sub.empty:
        return sub.iloc[0:0]
    hit = sub["strategy"].astype(str).str.contains(compare, regex=False)
    hit |= sub["model"].astype(str).str.contains(compare, regex=False)
    return sub[hit]


def review_comparison(cv: pd.DataFrame, review: pd.DataFrame) -> pd.DataFrame:
    """The review's figures side by side with this run's comparable strategies: balanced
    accuracy next to a reported accuracy, AUC with its interval, the verdict."""
    rows = []
    for rec in review.to_dict("records"):
        base = {
            "marker": rec["marker"],
            "review_method": rec["method"],
            "review_figure": rec["review_text"],
            "review_metric": rec["metric"],
            "review_value": rec["review_value"],
            "review_ref": rec["review_ref"],
        }
        mine = _matching(cv, rec["marker"], str(rec.get("compare") or ""))
        if mine.empty:
            where = rec.get("compare") if rec["marker"] == "habitats" else "no comparable strategy"
            rows.append({**base, "this_run": str(where or ""), "this_run_balanced_accuracy": np.nan,
                         "this_run_auc": "", "this_run_verdict": ""})  # fmt: skip
            continue
        for r in mine.to_dict("records"):
            within = "" if pd.isna(r.get("within")) or not r.get("within") else f", {r['within']}"
            n = _fmt(r.get("n"), ".0f")
            # A strategy that did not run has no n: say so rather than "n=".
            size = f"n={n}{within}" if n else "not run"
            rows.append({**base, "this_run": f"{r['strategy']} ({size})",
                         "this_run_balanced_accuracy": r.get("balanced_accuracy"),
                         "this_run_auc": _auc_text(pd.Series(r)),
                         "this_run_verdict": r.get("verdict", "")})  # fmt: skip
    return pd.DataFrame(rows)


def marker_summary_figure(
    cv: pd.DataFrame, validation: pd.DataFrame, review: pd.DataFrame, path: str | Path
) -> None:
    """Left: nested-CV AUC (interval) per strategy and external validation AUCs. Right: each
    strategy's balanced accuracy beside the accuracies the review reports (black stars, context).
    Hollow markers: strategies without evidence."""
    apply_style()
    cv = cv[cv["auc"].notna() | cv["marker"].isin(review["marker"])]
    markers = _ordered_markers(cv, validation)
    strategies = sorted(cv.loc[cv["auc"].notna(), "strategy"].dropna().unique())
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(12, 1.6 + 0.75 * max(len(markers), 1)), sharey=True,
        gridspec_kw={"width_ratios": [3, 2]},
    )  # fmt: skip
    width = 0.6 / max(len(strategies), 1)
    labelled: set[str] = set()
    for si, strategy in enumerate(strategies):
        sub = cv[(cv["strategy"] == strategy) & cv["auc"].notna()]
        for _, rec in sub.iterrows():
            y = markers.index(rec["marker"]) - 0.3 + width * (si + 0.5)
            hollow = rec.get("verdict") == "no evidence"
            style = {"color": colour_for(si), "mfc": "white" if hollow else colour_for(si)}
            label = None if strategy in labelled else f"{strategy}"
            labelled.add(strategy)
            if pd.notna(rec.get("auc_ci_low")) and pd.notna(rec.get("auc_ci_high")):
                ax.plot([rec["auc_ci_low"], rec["auc_ci_high"]], [y, y], color=colour_for(si), lw=2)
            # A shape per strategy as well as a colour, so strategies stay apart in greyscale.
            ax.plot(rec["auc"], y, SHAPES[si % len(SHAPES)], label=label, **style)
            if pd.notna(rec.get("balanced_accuracy")):
                bx.plot(rec["balanced_accuracy"], y, SHAPES[si % len(SHAPES)], **style)
    for j, (_, rec) in enumerate(validation.dropna(subset=["auc"]).iterrows()):
        if rec["marker"] in markers:
            ax.plot(rec["auc"], markers.index(rec["marker"]), "s", mfc="none", mec="black", ms=8,
                    label="external validation" if j == 0 else None)  # fmt: skip
    shown = review[review["marker"].isin(markers) & review["review_value"].notna()]
    shown = shown[shown["metric"] == "accuracy"]
    for j, (_, rec) in enumerate(shown.iterrows()):
        bx.plot(rec["review_value"], markers.index(rec["marker"]), "*", color="black", ms=11,
                label="review: reported accuracy (context)" if j == 0 else None)  # fmt: skip
        bx.annotate(f"{rec['method']} {rec['review_value']:.0%} {rec['review_ref']}",
                    (rec["review_value"], markers.index(rec["marker"]) + 0.32), fontsize=6,
                    ha="center")  # fmt: skip
    for a in (ax, bx):
        a.axvline(0.5, color="grey", ls=":", lw=1)
        a.set_xlim(0.3, 1.0)
    ax.set_yticks(range(len(markers)), markers)
    ax.invert_yaxis()
    ax.set_xlabel("ROC AUC (unitless; 0.5 = chance)")
    bx.set_xlabel("balanced accuracy (this run) / accuracy (review)")
    ax.set_title("Nested-CV AUC (95% interval), external validation; hollow = no evidence",
                 fontsize=9)  # fmt: skip
    bx.set_title("This run next to the review's reported figures", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=4)
    bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
