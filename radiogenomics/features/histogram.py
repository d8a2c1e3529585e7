"""Features stage, family `histogram`: intensity-histogram descriptors per sequence/map x ROI.

For CDKN2A/B and H3K27 (skewed, subtype-defining markers): percentiles, mean, standard deviation,
skewness, excess kurtosis (Fisher, normal = 0), entropy and uniformity. Intensities are the final
normalised images of the preprocessing stage (structural sequences normalised there; ADC/rCBV in
their map units). Entropy and uniformity need a discretisation: a fixed bin *count* over the ROI's
own range is used because it is unit-free (IBSI's recommendation for arbitrary-unit MRI), so the
same setting fits z-scored sequences and physical maps alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats as sps

from radiogenomics.features.common import QC, Rois, intensity_features

FAMILY = "histogram"
DEFAULT_PERCENTILES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def percentile_name(p: float) -> str:
    """Column-safe percentile name: 5 -> 'p05', 92.5 -> 'p92.5'."""
    return f"p{int(p):02d}" if float(p).is_integer() else f"p{p:g}"


def feature_names(percentiles: Sequence[float]) -> list[str]:
    """Names of all histogram features, in column order."""
    return [percentile_name(p) for p in percentiles] + [
        "mean",
        "std",
        "skewness",
        "kurtosis",
        "entropy",
        "uniformity",
        "iqr",
        "mad",
    ]


def discretise_fbn(values: np.ndarray, n_bins: int) -> np.ndarray:
    """IBSI fixed-bin-number discretisation to 1..n_bins (a flat ROI maps to bin 1)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.ones(values.shape, dtype=int)
    bins = np.floor(n_bins * (values - lo) / (hi - lo)).astype(int) + 1
    return np.minimum(bins, n_bins)


def entropy_uniformity(values: np.ndarray, n_bins: int) -> tuple[float, float]:
    """IBSI intensity-histogram entropy (log2) and uniformity of the discretised values."""
    counts = np.bincount(discretise_fbn(values, n_bins))[1:]
    p = counts[counts > 0] / values.size
    return float(-(p * np.log2(p)).sum()), float((p**2).sum())


def histogram_stats(values: np.ndarray, percentiles: Sequence[float], n_bins: int) -> dict:
    """All histogram features of one ROI's values."""
    out = dict(
        zip(
            (percentile_name(p) for p in percentiles),
            np.percentile(values, percentiles),
            strict=True,
        )
    )
    std = float(values.std())
    flat = std == 0.0
    q25, q75 = np.percentile(values, [25, 75])
    ent, uni = entropy_uniformity(values, n_bins)
    out.update(
        {
            "mean": float(values.mean()),
            "std": std,
            # A flat ROI has no defined skewness/kurtosis; IBSI sets them to 0.
            "skewness": 0.0 if flat else float(sps.skew(values, bias=True)),
            "kurtosis": 0.0 if flat else float(sps.kurtosis(values, fisher=True, bias=True)),
            "entropy": ent,
            "uniformity": uni,
            "iqr": float(q75 - q25),
            "mad": float(np.mean(np.abs(values - values.mean()))),
        }
    )
    return {k: float(v) for k, v in out.items()}


def extract_histogram(
    seqs: Iterable[str],
    seq_paths: Mapping[str, Path],
    manifest: Mapping,
    rois: Rois,
    qc: QC,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    n_bins: int = 64,
    masks: Mapping[str, np.ndarray | None] | None = None,
) -> dict:
    """All histogram features of one subject/session."""

    def stats(values: np.ndarray) -> dict:
        return histogram_stats(values, percentiles, n_bins)

    return intensity_features(
        FAMILY, seqs, seq_paths, manifest, rois, stats, feature_names(percentiles), qc, masks
    )
