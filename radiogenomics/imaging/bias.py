"""Imaging chain (preprocessing): N4 bias-field correction of structural sequences (not maps)."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.imaging.common import (
    MAPS_DEFAULT,
    check_image_usable,
    ensure_ras,
    read_manifest,
    save_on,
    sequence_paths,
    shrink_to_spacing,
    to_ants,
    write_manifest,
)
from radiogenomics.io import load_nifti

log = logging.getLogger(__name__)
STAGE = "bias_correct_n4"


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def head_mask(data: np.ndarray) -> np.ndarray:
    """Foreground (head) mask: Otsu on positive voxels, closed, holes filled, largest component."""
    pos = data[data > 0]
    if pos.size == 0:
        return np.zeros(data.shape, bool)
    hi = np.percentile(pos, 99.5)
    thr = otsu_threshold(np.clip(pos, None, hi))
    # Half of Otsu keeps dark tissue (CSF, bone marrow) that a plain Otsu cut drops.
    mask = data > 0.5 * thr
    mask = ndimage.binary_closing(mask, iterations=2)
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, lab, index=np.arange(1, n + 1))
        mask = lab == (int(np.argmax(sizes)) + 1)
    return _fill_holes_slicewise(mask)


def _fill_holes_slicewise(mask: np.ndarray) -> np.ndarray:
    """3-D hole filling plus per-axial-slice filling (thick slices leave open holes in 3-D)."""
    mask = ndimage.binary_fill_holes(mask)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask


def n4_shrink(
    shape: tuple[int, ...],
    zooms: tuple[float, ...],
    shrink_factor: int | None = None,
    fit_spacing_mm: float = 12.0,
) -> int:
    """Shrink factor for the N4 fit: the configured one, or the one that brings the finest voxel
    axis to about `fit_spacing_mm`; capped so the shrunk image keeps >= 4 voxels on every axis."""
    if shrink_factor is None:
        shrink_factor = shrink_to_spacing(zooms, fit_spacing_mm)
    cap = min(s for s in shape if s > 1) // 4 or 1
    return int(max(1, min(shrink_factor, cap)))


def n4_correct(
    img: nib.Nifti1Image,
    shrink_factor: int | None = None,
    iterations: tuple[int, ...] = (50, 50, 50),
    fit_spacing_mm: float = 12.0,
) -> np.ndarray:
    """N4-corrected voxel array of `img` (bias estimated within the head mask)."""
    import ants

    data = np.asarray(img.dataobj, dtype=np.float32)
    # N4 works on log intensities: keep them positive; interpolation negatives become 0.
    data = np.clip(data, 0, None)
    mask = head_mask(data) & (data > 0)
    if mask.sum() < 100:
        return data
    shrink = n4_shrink(data.shape, img.header.get_zooms()[:3], shrink_factor, fit_spacing_mm)
    out = ants.n4_bias_field_correction(
        to_ants(img, data),
        mask=to_ants(img, mask.astype(np.float32)),
        shrink_factor=shrink,
        convergence={"iters": list(iterations), "tol": 1e-7},
    )
    corrected = out.numpy().astype(np.float32)
    corrected[~mask] = data[~mask]
    return corrected


def bias_correct_subject(
    manifest_in: str | Path,
    manifest_out: str | Path,
    *,
    shrink_factor: int | None = None,
    iterations: tuple[int, ...] = (50, 50, 50),
    fit_spacing_mm: float = 12.0,
    maps: tuple[str, ...] = MAPS_DEFAULT,
) -> dict[str, str]:
    """N4 every structural sequence of a subject, copy maps unchanged; write `n4/manifest.json`."""
    upstream = read_manifest(manifest_in, stage=STAGE)
    out_dir = Path(manifest_out).parent
    written: dict[str, str] = {}
    shrinks: dict[str, int] = {}
    for seq, path in sequence_paths(manifest_in, upstream).items():
        img = ensure_ras(load_nifti(path, stage=STAGE, what=f"{seq} image"))
        data = np.asarray(img.dataobj, dtype=np.float32)
        check_image_usable(data, stage=STAGE, file=path)
        if seq in maps:
            # Quantitative maps keep their physical values: no bias correction.
            corrected = data
        else:
            shrinks[seq] = n4_shrink(
                data.shape, img.header.get_zooms()[:3], shrink_factor, fit_spacing_mm
            )
            corrected = n4_correct(img, shrinks[seq], tuple(iterations))
            log.info(
                "N4 %s: shrink %d, mean ratio %.3f",
                seq,
                shrinks[seq],
                float(corrected[data > 0].mean() / max(data[data > 0].mean(), 1e-6)),
            )
        save_on(corrected, img, out_dir / f"{seq}.nii.gz")
        written[seq] = f"{seq}.nii.gz"
    write_manifest(
        manifest_out,
        upstream,
        written,
        n4_shrink_factor=shrinks,
        n4_iterations=list(iterations),
        n4_skipped=[s for s in written if s in maps],
    )
    return written
