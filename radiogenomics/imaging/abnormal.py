"""Imaging chain (preprocessing): crude abnormal-signal mask used before the tumour is segmented.

Atlas registration and rCBV normalisation run before segmentation, so they use this rough proxy:
voxels whose FLAIR (else T2) intensity is far above the brain's robust centre, kept as connected
blobs of at least `min_ml`. It only needs to cover the bulk of the lesion, not its exact border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ABNORMAL_SEQUENCES = ("flair", "t2")
SMOOTH_MM = 1.5


def sigma_voxels(spacing_mm: float) -> float:
    """Gaussian sigma (voxels) equal to SMOOTH_MM at this voxel size."""
    return SMOOTH_MM / float(spacing_mm)


def robust_z(
    data: np.ndarray, mask: np.ndarray, stats_from: np.ndarray | None = None
) -> np.ndarray:
    """(x - median) / (1.4826 * MAD), median and MAD within `mask` of `stats_from` (else data)."""
    vals = np.asarray(data if stats_from is None else stats_from)[mask]
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826
    return (np.asarray(data, np.float32) - med) / max(mad, 1e-6)


def crude_abnormality_mask(
    data: np.ndarray,
    brain: np.ndarray,
    voxel_ml: float,
    z_threshold: float = 3.0,
    min_ml: float = 1.0,
    sigma_vox: float = 0.0,
) -> np.ndarray:
    """Hyperintense blobs (robust z > threshold, >= min_ml) inside the brain, slightly dilated."""
    brain = np.asarray(brain, bool)
    if brain.sum() < 10:
        return np.zeros(brain.shape, bool)
    raw = np.asarray(data, np.float32)
    # Smoothing turns a lesion's speckled voxels into one coherent blob and suppresses isolated
    # noise voxels (the border grows by about sigma: this mask is deliberately generous).
    smooth = ndimage.gaussian_filter(raw, sigma_vox) if sigma_vox > 0 else raw
    # Ignore the outer rim, where partial volume with CSF/skull fakes hyperintensity.
    core = ndimage.binary_erosion(brain, iterations=2)
    hot = (robust_z(smooth, brain) > z_threshold) & core
    lab, n = ndimage.label(hot)
    if n == 0:
        return hot
    sizes = ndimage.sum(hot, lab, index=np.arange(1, n + 1)) * voxel_ml
    keep = np.isin(lab, np.flatnonzero(sizes >= min_ml) + 1)
    return ndimage.binary_dilation(keep, iterations=1) & brain
