"""Imaging chain (preprocessing): N4 bias-field correction of structural sequences (not maps).

Inputs come raw (non-negative magnitudes, a few interpolation negatives) or already intensity-
normalised (z-scored: half the brain negative; background exactly 0 when only the brain was
z-scored, a constant negative value when the whole volume was). N4 fits a multiplicative field to
log intensities, so it needs positive values; clipping a z-scored image at 0 would erase half the
brain (the derived mask then shrinks and co-registration loses its signal). `condition_intensities`
therefore detects (or takes the cohort's declared `intensities`) which kind an image is:
raw images have their few interpolation negatives set to 0, normalised ones are shifted so their
darkest foreground voxel is just above 0 and their background becomes 0 (for a whole-volume
z-score, whose background is the minimum, this restores the raw image up to its scale). What was
done is returned and written to the step's manifest (`intensity_handling`), never silent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.errors import SubjectError
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


INTENSITY_MODES = ("auto", "raw", "normalised")
# Raw magnitudes are >= 0; resampling ringing leaves a few negatives (measured: at most 0.9 % of
# the non-zero voxels on the real BraTS-space TCGA cases). A z-score puts ~half the brain below 0.
NORMALISED_NEGATIVE_FRACTION = 0.05
# A fill value is the background when it covers this share of the volume's outer faces.
BACKGROUND_BORDER_FRACTION = 0.5
# Robust z (median/MAD in the head) above which bright blobs are left out of the N4 fit.
BRIGHT_Z = 2.0


def border_values(data: np.ndarray) -> np.ndarray:
    """Voxel values on the six outer faces of a 3-D array."""
    d = np.asarray(data)
    faces = [d[0], d[-1], d[:, 0], d[:, -1], d[:, :, 0], d[:, :, -1]]
    return np.concatenate([f.ravel() for f in faces])


def background_value(data: np.ndarray) -> float | None:
    """The constant fill value around the head or brain (0, or a z-score's constant), or None
    when the border is noisy (a whole head straight from the scanner)."""
    vals, counts = np.unique(border_values(data), return_counts=True)
    k = int(np.argmax(counts))
    if counts[k] < BACKGROUND_BORDER_FRACTION * counts.sum():
        return None
    return float(vals[k])


def condition_intensities(
    data: np.ndarray, declared: str = "auto"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image -> (non-negative image with background 0, foreground mask, what was done).

    `declared`: `raw`, `normalised` or `auto` (detect: a negative constant background, or more
    than 5 % of the foreground below 0, means normalised)."""
    if declared not in INTENSITY_MODES:
        raise ValueError(f"intensities must be one of {INTENSITY_MODES}, not {declared!r}")
    x = np.asarray(data, dtype=np.float32)
    bg = background_value(x)
    if bg is not None:
        fg = x != bg
    else:
        # Noisy background: the head is what stands above it, wherever the scale's zero lies.
        fg = head_mask(x - float(x.min()))
    vals = x[fg]
    if vals.size == 0:
        return np.zeros_like(x), fg, {"intensities": "empty", "background": bg}
    neg_fraction = float((vals < 0).mean())
    detected = (
        "normalised"
        if (bg is not None and bg < 0) or neg_fraction > NORMALISED_NEGATIVE_FRACTION
        else "raw"
    )
    mode = detected if declared == "auto" else declared
    info = {
        "intensities": mode,
        "declared": declared,
        "detected": detected,
        "background": bg,
        "foreground_negative_fraction": round(neg_fraction, 6),
        "foreground_min": float(vals.min()),
    }
    if mode == "raw":
        neg = fg & (x < 0)
        # Outside the foreground too: N4 and the later steps read magnitudes (as before).
        out = np.clip(x, 0, None)
        info |= {"shift": 0.0, "clipped_negative_voxels": int(neg.sum())}
        if neg.any():
            log.info(
                "raw intensities: %d negative voxels (min %.3g) set to 0", neg.sum(), vals.min()
            )
        if detected == "normalised":
            log.warning(
                "intensities declared raw but %.0f %% of the foreground is negative",
                100 * neg_fraction,
            )
        return out, fg & ~neg, info
    if bg is not None and bg <= float(np.percentile(vals, 1)):
        # A fill value at the bottom of the foreground is raw 0 (the whole volume was z-scored):
        # shifting it to 0 restores raw up to scale, and voxels below it are the interpolation
        # negatives of the raw image, set to 0 and counted as in raw mode.
        shift = bg
        below = fg & (x <= bg)
        out = np.where(fg & ~below, x - shift, 0).astype(np.float32)
        info |= {"shift": shift, "clipped_negative_voxels": int(below.sum())}
        log.info("normalised intensities: fill value %.4g is raw 0, shifted to 0", bg)
        return out, fg & ~below, info
    # Otherwise the darkest foreground voxel goes just above 0 (log-able for N4); a noisy
    # background is shifted with the head (it stays the darkest part, as when raw).
    lo = float(x.min()) if bg is None else float(vals.min())
    eps = 1e-3 * max(float(np.percentile(vals, 99.5) - lo), 1e-6)
    shift = lo - eps
    out = (x - shift) if bg is None else np.where(fg, x - shift, 0)
    out = out.astype(np.float32)
    info |= {"shift": shift, "clipped_negative_voxels": 0}
    log.info("normalised intensities: shifted by %.4g to positive, background %s -> 0", -shift, bg)
    return out, fg, info


def bright_blobs(data: np.ndarray, mask: np.ndarray, zooms: tuple[float, ...]) -> np.ndarray:
    """Hyperintense blobs (lesions, enhancement) left out of the N4 fit.

    Fitted over a large FLAIR-bright lesion, N4's smooth field rises there and removes lesion
    contrast: on six real BraTS-space cases the fitted field was 0.07-0.27 (log) higher in the
    lesion than in normal brain and lesion/brain FLAIR contrast fell by 5-23 %. The blobs are
    robust-z outliers above `BRIGHT_Z` of at least 1 ml (imaging.abnormal's crude mask)."""
    from radiogenomics.imaging.abnormal import crude_abnormality_mask, sigma_voxels

    sp = np.asarray(zooms, dtype=float)
    return crude_abnormality_mask(
        data, mask, float(np.prod(sp)) / 1000.0, z_threshold=BRIGHT_Z,
        sigma_vox=sigma_voxels(float(sp.mean())),
    )  # fmt: skip


def n4_correct(
    img: nib.Nifti1Image,
    shrink_factor: int | None = None,
    iterations: tuple[int, ...] = (50, 50, 50),
    fit_spacing_mm: float = 12.0,
    intensities: str = "auto",
) -> np.ndarray:
    """N4-corrected voxel array of `img` (bias estimated within the head mask)."""
    return n4_correct_details(img, shrink_factor, iterations, fit_spacing_mm, intensities)[0]


def n4_correct_details(
    img: nib.Nifti1Image,
    shrink_factor: int | None = None,
    iterations: tuple[int, ...] = (50, 50, 50),
    fit_spacing_mm: float = 12.0,
    intensities: str = "auto",
    run_n4: bool = True,
) -> tuple[np.ndarray, dict]:
    """As `n4_correct`, plus what was done to the intensities (`condition_intensities`);
    `run_n4=False` (already bias-corrected cohorts) only conditions them."""
    import ants

    data, fg, info = condition_intensities(np.asarray(img.dataobj, dtype=np.float32), intensities)
    mask = head_mask(data) & fg & (data > 0)
    if not run_n4 or mask.sum() < 100:
        info["n4"] = "skipped (declared bias-corrected)" if not run_n4 else "skipped (no head)"
        return data, info
    shrink = n4_shrink(data.shape, img.header.get_zooms()[:3], shrink_factor, fit_spacing_mm)
    bright = bright_blobs(data, mask, img.header.get_zooms()[:3])
    out = ants.n4_bias_field_correction(
        to_ants(img, data),
        mask=to_ants(img, mask.astype(np.float32)),
        # The field is fitted on the rest and applied everywhere in the mask (bright blobs too).
        weight_mask=to_ants(img, (mask & ~bright).astype(np.float32)),
        shrink_factor=shrink,
        convergence={"iters": list(iterations), "tol": 1e-7},
    )
    corrected = out.numpy().astype(np.float32)
    corrected[~mask] = data[~mask]
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
    info |= {"n4": "run", "n4_fit_excluded_ml": round(float(bright.sum() * voxel_ml), 2)}
    return corrected, info


def bias_correct_subject(
    manifest_in: str | Path,
    manifest_out: str | Path,
    *,
    shrink_factor: int | None = None,
    iterations: tuple[int, ...] = (50, 50, 50),
    fit_spacing_mm: float = 12.0,
    maps: tuple[str, ...] = MAPS_DEFAULT,
    intensities: str = "auto",
    bias_corrected: bool = False,
) -> dict[str, str]:
    """N4 every structural sequence of a subject, copy maps unchanged; write `n4/manifest.json`.

    `intensities` (`auto`, `raw`, `normalised`) and `bias_corrected` (skip N4) are the cohort's
    declarations (config `cohorts[].intensities`, `cohorts[].bias_corrected`)."""
    upstream = read_manifest(manifest_in, stage=STAGE)
    out_dir = Path(manifest_out).parent
    written: dict[str, str] = {}
    shrinks: dict[str, int] = {}
    handling: dict[str, dict] = {}
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
            try:
                corrected, handling[seq] = n4_correct_details(
                    img, shrinks[seq], tuple(iterations), intensities=intensities,
                    run_n4=not bias_corrected,
                )  # fmt: skip
            except ValueError as exc:
                raise SubjectError(f"{seq}: {exc}", stage=STAGE, file=path) from exc
            log.info(
                "N4 %s (%s intensities, %s): shrink %d",
                seq,
                handling[seq]["intensities"],
                handling[seq]["n4"],
                shrinks[seq],
            )
        save_on(corrected, img, out_dir / f"{seq}.nii.gz")
        written[seq] = f"{seq}.nii.gz"
    write_manifest(
        manifest_out,
        upstream,
        written,
        n4_shrink_factor=shrinks,
        n4_iterations=list(iterations),
        n4_skipped=[s for s in written if s in maps or handling.get(s, {}).get("n4") != "run"],
        intensity_handling=handling,
    )
    return written
