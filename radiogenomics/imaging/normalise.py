"""Imaging chain (preprocessing): intensity normalisation; writes the final `prep/{seq}.nii.gz`.

Structural sequences: z-score within the brain (default), a WhiteStripe-like z-score against
normal-appearing white matter (NAWM), or Nyul-style piecewise-linear histogram matching of brain
percentiles onto a fixed standard scale. Quantitative maps keep physical units (ADC); relative maps
(rCBV) are divided by the median in contralateral NAWM. NAWM = template WM probability (warped to
the subject by the atlas step) above a threshold, minus the crude abnormal-signal mask;
contralateral = the hemisphere holding less of that mask. Everything outside the brain is set to 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.abnormal import (
    ABNORMAL_SEQUENCES,
    crude_abnormality_mask,
    sigma_voxels,
)
from radiogenomics.imaging.common import (
    MAPS_DEFAULT,
    read_manifest,
    save_on,
    sequence_paths,
    voxel_sizes,
    write_manifest,
)
from radiogenomics.io import load_nifti

log = logging.getLogger(__name__)
STAGE = "normalise_intensities"
DEFAULT_PERCENTILES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)


def zscore(data: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, dict]:
    """(x - mean) / std with mean and std taken within `region`."""
    vals = data[region]
    mu, sd = float(vals.mean()), float(vals.std())
    if sd == 0:
        raise ValueError("zero intensity spread in the normalisation region")
    return (data - mu) / sd, {"mean": mu, "std": sd, "voxels": int(region.sum())}


def histogram_match(
    data: np.ndarray,
    brain: np.ndarray,
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES,
    standard: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, dict]:
    """Nyul piecewise-linear map of brain percentile landmarks onto a standard scale."""
    std = np.asarray(
        standard if standard is not None else np.linspace(0, 100, len(percentiles)),
        dtype=np.float64,
    )
    if len(std) != len(percentiles):
        raise ValueError("standard scale and percentiles differ in length")
    land = np.percentile(data[brain], percentiles)
    land = np.maximum.accumulate(land + np.arange(len(land)) * 1e-6)
    # np.interp clamps; extrapolate linearly beyond the outer landmarks instead.
    out = np.interp(data, land, std)
    lo, hi = data < land[0], data > land[-1]
    out[lo] = std[0] + (data[lo] - land[0]) * (std[1] - std[0]) / max(land[1] - land[0], 1e-6)
    out[hi] = std[-1] + (data[hi] - land[-1]) * (std[-1] - std[-2]) / max(land[-1] - land[-2], 1e-6)
    return out, {"landmarks": [float(x) for x in land]}


def contralateral_hemisphere(hemisphere: np.ndarray, abnormal: np.ndarray) -> int | None:
    """Label (1 left, 2 right) of the hemisphere with less abnormal signal; None if none found."""
    counts = [int((abnormal & (hemisphere == h)).sum()) for h in (1, 2)]
    if sum(counts) == 0:
        return None
    return 1 if counts[0] < counts[1] else 2


def nawm_mask(
    wm_prob: np.ndarray,
    brain: np.ndarray,
    abnormal: np.ndarray,
    hemisphere: np.ndarray | None,
    side: int | None,
    threshold: float = 0.9,
) -> np.ndarray:
    """Normal-appearing WM: WM probability >= threshold, in brain, not abnormal, chosen side."""
    m = (wm_prob >= threshold) & brain & ~abnormal
    if hemisphere is not None and side is not None:
        m &= hemisphere == side
    return m


def normalise_subject(
    coreg_manifest: str | Path,
    brain_mask: str | Path,
    wm_prob: str | Path,
    hemisphere: str | Path,
    manifest_out: str | Path,
    *,
    method: str = "zscore",
    maps: tuple[str, ...] = MAPS_DEFAULT,
    relative_maps: tuple[str, ...] = ("rcbv",),
    wm_threshold: float = 0.9,
    min_reference_voxels: int = 50,
) -> dict:
    """Normalise every co-registered sequence of a subject; write `prep/manifest.json`."""
    manifest = read_manifest(coreg_manifest, stage=STAGE)
    paths = sequence_paths(coreg_manifest, manifest)
    mask_img = load_nifti(brain_mask, stage=STAGE, what="brain mask")
    brain = np.asarray(mask_img.dataobj) > 0
    if brain.sum() == 0:
        raise SubjectError("brain mask is empty", stage=STAGE, file=brain_mask)
    wm = np.asarray(load_nifti(wm_prob, stage=STAGE, what="WM probability").dataobj, np.float32)
    hemi = np.asarray(load_nifti(hemisphere, stage=STAGE, what="hemisphere labels").dataobj)
    if wm.shape != brain.shape or hemi.shape != brain.shape:
        raise SubjectError(
            "atlas maps and brain mask are on different grids", stage=STAGE, file=wm_prob
        )
    voxel_ml = float(np.prod(voxel_sizes(mask_img.affine))) / 1000
    abn_seq = next((s for s in ABNORMAL_SEQUENCES if s in paths), None)
    abnormal = np.zeros(brain.shape, bool)
    if abn_seq:
        abn = np.asarray(load_nifti(paths[abn_seq], stage=STAGE).dataobj, np.float32)
        sp = float(voxel_sizes(mask_img.affine).mean())
        abnormal = crude_abnormality_mask(abn, brain, voxel_ml, sigma_vox=sigma_voxels(sp))
    side = contralateral_hemisphere(hemi, abnormal)
    out_dir = Path(manifest_out).parent
    details: dict[str, dict] = {}
    written: dict[str, str] = {}
    for seq, path in paths.items():
        img = load_nifti(path, stage=STAGE, what=f"co-registered {seq}")
        if img.shape != brain.shape:
            raise SubjectError(
                f"{seq} shape {img.shape} != brain mask {brain.shape}", stage=STAGE, file=path
            )
        data = np.asarray(img.dataobj, np.float32)
        try:
            if seq in relative_maps:
                ref = nawm_mask(wm, brain, abnormal, hemi, side, wm_threshold) & (data > 0)
                where = "contralateral NAWM" if side else "NAWM (no abnormality found)"
                if ref.sum() < min_reference_voxels:
                    raise SubjectError(
                        f"{seq}: only {int(ref.sum())} voxels of {where}", stage=STAGE, file=path
                    )
                med = float(np.median(data[ref]))
                if med <= 0:
                    raise SubjectError(f"{seq}: median in {where} is {med}", stage=STAGE, file=path)
                out = data / med
                info = {
                    "reference": where,
                    "median": med,
                    "voxels": int(ref.sum()),
                    "hemisphere": {None: "both", 1: "left", 2: "right"}[side],
                }
            elif seq in maps:
                out, info = data, {"reference": "physical units (unchanged)"}
            elif method == "zscore":
                out, info = zscore(data, brain)
            elif method == "whitestripe":
                ref = nawm_mask(wm, brain, abnormal, None, None, wm_threshold)
                if ref.sum() < min_reference_voxels:
                    raise SubjectError(
                        f"{seq}: only {int(ref.sum())} NAWM voxels", stage=STAGE, file=path
                    )
                out, info = zscore(data, ref)
            elif method == "histogram_matching":
                out, info = histogram_match(data, brain)
            else:
                raise ValueError(f"unknown normalisation method {method!r}")
        except ValueError as exc:
            raise SubjectError(f"{seq}: {exc}", stage=STAGE, file=path) from exc
        out = np.where(brain, out, 0).astype(np.float32)
        save_on(out, img, out_dir / f"{seq}.nii.gz")
        written[seq] = f"{seq}.nii.gz"
        details[seq] = {"method": "map" if seq in maps else method, **info}
    write_manifest(
        manifest_out,
        manifest,
        written,
        reference=manifest.get("reference", ""),
        resample_mm=manifest.get("resample_mm"),
        normalisation=details,
        brain_mask="brain_mask.nii.gz",
        crude_abnormal_ml=float(abnormal.sum() * voxel_ml),
    )
    return details
