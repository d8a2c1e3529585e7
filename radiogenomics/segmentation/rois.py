"""Imaging chain (segmentation): ROI masks from tumour labels, incl. peritumoral rings in mm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from radiogenomics.paths import ROIS

ROI_NAMES: tuple[str, ...] = ROIS
# Label subsets of the BraTS subregions (1 necrosis/non-enhancing core, 2 oedema, 3 enhancing).
LABEL_ROIS: dict[str, tuple[int, ...]] = {
    "whole_tumor": (1, 2, 3),
    "tumor_core": (1, 3),
    "enhancing": (3,),
    "necrosis": (1,),
    "edema": (2,),
}
RING_NAMES: tuple[str, ...] = ("peritumoral_near", "peritumoral_far")


def peritumoral_rings(
    whole: np.ndarray,
    brain: np.ndarray,
    spacing: Sequence[float],
    rings_mm: Sequence[Sequence[float]],
) -> list[np.ndarray]:
    """Shells (lo, hi] mm outside the whole tumour, inside the brain (lo = 0: from the edge)."""
    whole = np.asarray(whole, bool)
    brain = np.asarray(brain, bool)
    if not whole.any():
        return [np.zeros(whole.shape, bool) for _ in rings_mm]
    dist = ndi.distance_transform_edt(~whole, sampling=np.asarray(spacing, float))
    out = []
    for lo, hi in rings_mm:
        out.append((dist > lo) & (dist <= hi) & brain & ~whole)
    return out


def derive_rois(
    labels: np.ndarray,
    brain: np.ndarray,
    spacing: Sequence[float],
    rings_mm: Sequence[Sequence[float]] = ((0.0, 5.0), (5.0, 10.0)),
) -> dict[str, np.ndarray]:
    """Labels 0/1/2/3 + brain mask -> the seven ROI masks (uint8 0/1); empty ROIs stay empty."""
    labels = np.asarray(labels)
    if len(rings_mm) != len(RING_NAMES):
        raise ValueError(f"need {len(RING_NAMES)} peritumoral rings, got {len(rings_mm)}")
    for lo, hi in rings_mm:
        if not 0 <= lo < hi:
            raise ValueError(f"peritumoral ring ({lo}, {hi}) must satisfy 0 <= lo < hi")
    rois = {name: np.isin(labels, vals) for name, vals in LABEL_ROIS.items()}
    rings = peritumoral_rings(rois["whole_tumor"], brain, spacing, rings_mm)
    rois.update(dict(zip(RING_NAMES, rings, strict=True)))
    return {name: rois[name].astype(np.uint8) for name in ROI_NAMES}
