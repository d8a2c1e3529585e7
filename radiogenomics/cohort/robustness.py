"""Feature robustness (cohort stage): ICC of each feature across segmentation perturbations.

Each subject's `features/perturbed.tsv` (long: perturbation, feature, value) holds the feature
re-computed on the original, eroded and dilated masks. A feature whose between-subject variance
does not dominate the perturbation variance (ICC below a threshold, default 0.75 = "good" in Koo &
Li 2016) is dropped before any model sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.io import read_tsv

PERTURBATIONS = ("original", "erode1", "dilate1")


def icc(ratings: np.ndarray, kind: str = "3,1") -> float:
    """ICC(3,1) (consistency) or ICC(2,1) (absolute agreement); rows = subjects, cols = raters."""
    Y = np.asarray(ratings, float)
    Y = Y[np.isfinite(Y).all(axis=1)]
    n, k = Y.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = Y.mean()
    ss_rows = k * ((Y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((Y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((Y - grand) ** 2).sum() - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    if kind == "3,1":
        denom = msr + (k - 1) * mse
    elif kind == "2,1":
        denom = msr + (k - 1) * mse + k * (msc - mse) / n
    else:
        raise ValueError(f"unknown ICC kind {kind!r} (3,1 or 2,1)")
    return float((msr - mse) / denom) if denom > 0 else float("nan")


def read_perturbed(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Stack per-subject perturbed.tsv files (missing or empty ones are skipped)."""
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists() or p.stat().st_size == 0:
            continue
        df = read_tsv(p)
        if {"perturbation", "feature", "value"} - set(df.columns):
            raise ValueError(f"{p}: needs columns perturbation, feature, value")
        df["unit"] = str(p.parent.parent)  # the subject/session directory
        frames.append(df[["unit", "perturbation", "feature", "value"]])
    if not frames:
        return pd.DataFrame(columns=["unit", "perturbation", "feature", "value"])
    return pd.concat(frames, ignore_index=True)


def feature_icc(long: pd.DataFrame, kind: str = "3,1") -> pd.DataFrame:
    """ICC per feature from the long table: columns feature, icc, n_subjects.

    Per feature, the raters are the perturbations with at least one value (PERTURBATIONS in that
    order when present) and the subjects the units with a value."""
    columns = ["feature", "icc", "n_subjects"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    # One reshape for all features: a pivot per feature costs minutes at 1 mm radiomics (27k).
    wide = long.groupby(["feature", "unit", "perturbation"], sort=True)["value"].first().unstack()
    names = list(wide.columns)
    values = wide.to_numpy(float)
    features = wide.index.get_level_values("feature")
    starts = np.flatnonzero(np.r_[True, features[1:] != features[:-1]])
    rows = []
    for start, stop in zip(starts, [*starts[1:], len(features)], strict=True):
        block = values[start:stop]
        has_value = np.isfinite(block).any(axis=0)
        present = [name for name, ok in zip(names, has_value, strict=True) if ok]
        raters = [c for c in PERTURBATIONS if c in present] or present
        Y = block[:, [names.index(c) for c in raters]]
        # icc() drops incomplete subjects itself; with no rater no subject counts.
        n_ok = int(np.isfinite(Y).all(axis=1).sum()) if raters else 0
        rows.append({"feature": features[start], "icc": icc(Y, kind), "n_subjects": n_ok})
    return pd.DataFrame(rows, columns=columns)


def dropped_features(iccs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Features below threshold (or with undefined ICC: constant or too few subjects)."""
    bad = iccs[~(iccs["icc"] >= threshold)].copy()
    bad["reason"] = np.where(bad["icc"].isna(), "icc undefined", f"icc < {threshold}")
    return bad.reset_index(drop=True)


def run_robustness(
    perturbed: list[str], threshold: float, kind: str, out_icc: str, out_dropped: str
) -> None:
    """Rule feature_robustness: ICC table and the list of dropped features."""
    from radiogenomics.io import write_tsv

    iccs = feature_icc(read_perturbed(perturbed), kind)
    iccs["kept"] = iccs["icc"] >= threshold
    write_tsv(iccs, out_icc)
    write_tsv(dropped_features(iccs, threshold)[["feature", "icc", "reason"]], out_dropped)


def read_dropped(path: str | Path | None) -> set[str]:
    """Feature names listed in dropped_features.tsv (empty set when absent)."""
    if not path or not Path(path).exists() or Path(path).stat().st_size == 0:
        return set()
    return set(read_tsv(path)["feature"].astype(str))
