"""Features stage, family `lesion_wide`: whole-lesion summary statistics of quantitative maps.

The review's IDH/1p19q approach: lesion-wide mean, median, 10th and 90th percentile of ADC and
rCBV (and any extra map named in config) in every ROI, plus ROI volumes. Maps are used in their
physical units as delivered by the preprocessing stage: ADC in mm^2/s (scanner units, not
re-scaled), rCBV already normalised by the preprocessing helper to the mean CBV of contralateral
normal-appearing white matter (so 1.0 = normal white matter, >1.75 the classic high-grade cut-off).
No re-normalisation happens here, so a change there shows up as a change in these medians.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from radiogenomics.features.common import (
    QC,
    Rois,
    intensity_features,
    prefixed,
    voxel_volume_ml,
)

FAMILY = "lesion_wide"
MAP_FEATURES = ("mean", "median", "p10", "p90")


def lesion_wide_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, median, 10th and 90th percentile of the ROI values."""
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "mean": float(values.mean()),
        "median": float(p50),
        "p10": float(p10),
        "p90": float(p90),
    }


def roi_volumes(rois: Rois, masks: Mapping[str, np.ndarray | None] | None = None) -> dict:
    """`lesion_wide__all__{roi}__volume_ml` for every ROI (0 if empty, NaN if unusable)."""
    masks = rois.masks if masks is None else masks
    vml = voxel_volume_ml(rois.affine)
    vols = {}
    for roi, mask in masks.items():
        vol = np.nan if mask is None else float(mask.sum()) * vml
        vols.update(prefixed(FAMILY, "all", roi, {"volume_ml": vol}))
    return vols


def extract_lesion_wide(
    maps: Iterable[str],
    seq_paths: Mapping[str, Path],
    manifest: Mapping,
    rois: Rois,
    qc: QC,
    masks: Mapping[str, np.ndarray | None] | None = None,
) -> dict:
    """All lesion-wide features of one subject/session (NaN + reason if unusable)."""
    feats = roi_volumes(rois, masks)
    feats.update(
        intensity_features(
            FAMILY, maps, seq_paths, manifest, rois, lesion_wide_stats, MAP_FEATURES, qc, masks
        )
    )
    return feats
