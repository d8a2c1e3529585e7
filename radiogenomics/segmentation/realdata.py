"""Segmentation stage (evaluation): the imaging chain on labelled real cases, and BraTS-region Dice.

Used by `benchmarks/score_real_segmentation.py` and the real-data tests. A case is a set of
skull-stripped, co-registered sequences (BraTS space) with expert labels; `run_case` takes it
through what `preprocess_subject` and `segment_tumor` do for such a cohort: intake's RAS
reorientation, N4 (intensity handling included), rigid co-registration to the reference on the
`resample_mm` grid, the derived (non-zero) brain mask, z-score normalisation in the brain, then
`segment_tumor("automated", ...)`. Only the atlas registration is left out: for z-score
normalisation of structural sequences its WM/hemisphere maps are not read, so the zero maps we
hand `normalise_subject` change nothing (they only feed rCBV and WhiteStripe).

Variants of a case (`make_variant`) are what real cohorts bring: intensities already z-scored
(within the brain, or over the whole volume), FLAIR + T1c only, a thick-slice axial FLAIR
(6 mm slabs with a boxcar slice profile, i.e. the mean of the thin slices each slab covers),
and another voxel orientation with a qform that disagrees with the (correct) sform.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.io import read_json, save_nifti, write_json

SEQUENCES = ("t1", "t1ce", "t2", "flair")
# BraTS regions: labels of the pipeline (1 necrosis/NET, 2 oedema, 3 enhancing) and of BraTS (4).
REGIONS = {"wt": (1, 2, 3, 4), "tc": (1, 3, 4), "et": (3, 4)}
VARIANTS = ("original", "zscore_brain", "zscore_volume", "flair_t1ce", "thick_flair", "reoriented")


def dice_empty(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two masks; BraTS convention for an empty truth: 1 if the prediction is empty too,
    else 0."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    s = int(p.sum()) + int(t.sum())
    return float(2 * (p & t).sum() / s) if s else 1.0


def region_dice(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of whole tumour, tumour core and enhancing (labels 1/2/3 or BraTS 1/2/4)."""
    return {
        r: dice_empty(np.isin(pred, labels), np.isin(truth, labels))
        for r, labels in REGIONS.items()
    }


def block_downsample(img: nib.Nifti1Image, factor: int) -> nib.Nifti1Image:
    """Each `factor`^3 block of voxels averaged into one (what a coarser acquisition of the same
    field of view records), with the affine of the block centres."""
    if factor == 1:
        return img
    data = np.asarray(img.dataobj, np.float32)
    n = [s // factor for s in data.shape]
    d = data[: n[0] * factor, : n[1] * factor, : n[2] * factor]
    d = d.reshape(n[0], factor, n[1], factor, n[2], factor).mean((1, 3, 5))
    aff = img.affine.copy()
    aff[:3, 3] = img.affine[:3, :3] @ np.full(3, (factor - 1) / 2.0) + img.affine[:3, 3]
    aff[:3, :3] = img.affine[:3, :3] * factor
    return nib.Nifti1Image(d.astype(np.float32), aff)


def thick_slices(img: nib.Nifti1Image, thickness_mm: float = 6.0) -> nib.Nifti1Image:
    """Axial slabs about `thickness_mm` thick along the array axis closest to S, each the mean of
    the slices it covers (boxcar slice profile), with the affine of the slab centres."""
    axis = int(np.argmax(np.abs(img.affine[2, :3])))
    zoom = float(np.sqrt((img.affine[:3, axis] ** 2).sum()))
    thickness = max(1, int(round(thickness_mm / zoom)))
    data = np.moveaxis(np.asarray(img.dataobj, np.float32), axis, -1)
    n = data.shape[-1] // thickness
    slabs = data[..., : n * thickness].reshape(*data.shape[:-1], n, thickness).mean(-1)
    aff = img.affine.copy()
    aff[:3, 3] = img.affine[:3, 3] + img.affine[:3, axis] * (thickness - 1) / 2.0
    aff[:3, axis] = img.affine[:3, axis] * thickness
    return nib.Nifti1Image(np.moveaxis(slabs, -1, axis).astype(np.float32), aff)


def reoriented(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Same voxels stored as P, I, R axes (correct sform), with a qform 10 mm off: readers must
    follow the sform (NIfTI: sform_code > 0 wins)."""
    target = nib.orientations.axcodes2ornt(("P", "I", "R"))
    xform = nib.orientations.ornt_transform(nib.io_orientation(img.affine), target)
    data = nib.orientations.apply_orientation(np.asarray(img.dataobj), xform)
    aff = img.affine @ nib.orientations.inv_ornt_aff(xform, img.shape)
    out = nib.Nifti1Image(data, aff)
    wrong = aff.copy()
    wrong[:3, 3] += 10.0
    out.set_qform(wrong, code=1)
    out.set_sform(aff, code=2)
    return out


def zscored(img: nib.Nifti1Image, whole_volume: bool) -> nib.Nifti1Image:
    """Z-score as public sets ship it: within the non-zero brain (background stays 0), or over
    the whole volume (background becomes a constant negative value)."""
    data = np.asarray(img.dataobj, np.float32)
    region = np.ones(data.shape, bool) if whole_volume else data != 0
    vals = data[region]
    out = (data - vals.mean()) / vals.std()
    if not whole_volume:
        out = np.where(region, out, 0)
    return nib.Nifti1Image(out.astype(np.float32), img.affine)


def make_variant(images: Mapping[str, nib.Nifti1Image], variant: str) -> dict[str, nib.Nifti1Image]:
    """The case's images as `variant` (see VARIANTS) would bring them."""
    if variant == "original":
        return dict(images)
    if variant in ("zscore_brain", "zscore_volume"):
        return {s: zscored(im, variant == "zscore_volume") for s, im in images.items()}
    if variant == "flair_t1ce":
        return {s: im for s, im in images.items() if s in ("flair", "t1ce")}
    if variant == "thick_flair":
        return {s: thick_slices(im) if s == "flair" else im for s, im in images.items()}
    if variant == "reoriented":
        return {s: reoriented(im) for s, im in images.items()}
    raise ValueError(f"unknown variant {variant!r} (expected one of {VARIANTS})")


def run_case(
    images: Mapping[str, nib.Nifti1Image | str | Path],
    work: str | Path,
    *,
    reference: str = "t1ce",
    resample_mm: float = 1.0,
    intensities: str = "auto",
    seed: int = 0,
    segmentation_config: Mapping | None = None,
) -> dict:
    """The chain of a skull-stripped cohort on one case; returns labels, grid and timings."""
    from radiogenomics.imaging.bias import bias_correct_subject
    from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
    from radiogenomics.imaging.normalise import normalise_subject
    from radiogenomics.imaging.skullstrip import skullstrip_subject
    from radiogenomics.intake.nifti import canonical_image
    from radiogenomics.segmentation import segment_tumor

    work = Path(work)
    anat, prep = work / "anat", work / "prep"
    anat.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    for seq, src in images.items():
        path = src
        if isinstance(src, nib.Nifti1Image):
            path = work / f"source_{seq}.nii.gz"
            save_nifti(src, path)
        ras, _ = canonical_image(path, what=f"{seq} image")
        save_nifti(ras, anat / f"{seq}.nii.gz")
    seqs = {s: f"{s}.nii.gz" for s in images}
    ids = {"cohort": "real", "subject": "case", "session": "01"}
    write_json(ids | {"sequences": seqs, "missing": {}}, anat / "manifest.json")
    times["intake"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bias_correct_subject(anat / "manifest.json", prep / "n4" / "manifest.json",
                         intensities=intensities)  # fmt: skip
    times["n4"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = reference if reference in images else next(s for s in SEQUENCES if s in images)
    similarity = coregister_subject(
        prep / "n4" / "manifest.json",
        prep / "coreg" / "manifest.json",
        prep / "coreg" / "similarity.tsv",
        reference=ref,
        resample_mm=resample_mm,
        settings=RigidSettings(),
        seed=seed,
    )
    times["coregister"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    strip = skullstrip_subject(
        prep / "coreg" / "manifest.json", prep / "brain_mask.nii.gz", already_stripped=True
    )
    mask_img = nib.load(prep / "brain_mask.nii.gz")
    zeros = nib.Nifti1Image(np.zeros(mask_img.shape, np.float32), mask_img.affine)
    save_nifti(zeros, prep / "wm_zero.nii.gz")
    save_nifti(zeros, prep / "hemisphere_zero.nii.gz")
    normalise_subject(
        prep / "coreg" / "manifest.json",
        prep / "brain_mask.nii.gz",
        prep / "wm_zero.nii.gz",
        prep / "hemisphere_zero.nii.gz",
        prep / "manifest.json",
        method="zscore",
    )
    times["mask_normalise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = work / "seg" / "tumor_labels.nii.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = segment_tumor(
        "automated",
        prep / "manifest.json",
        prep / "brain_mask.nii.gz",
        out,
        config={"min_tumor_ml": 0.0, "automated": dict(segmentation_config or {})},
        seed=seed,
        meta_path=work / "seg" / "tumor_labels.json",
    )
    times["segment"] = time.perf_counter() - t0
    return {
        "labels": labels,
        "affine": nib.load(out).affine,
        "meta": read_json(work / "seg" / "tumor_labels.json"),
        "n4": read_json(prep / "n4" / "manifest.json").get("intensity_handling", {}),
        "similarity": similarity,
        "brain_ml": strip["volume_ml"],
        "seconds": times,
    }


def truth_on_grid(truth: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Expert labels brought onto the result grid (RAS, nearest neighbour)."""
    from radiogenomics.segmentation.provided import resample_labels_nearest

    ras = nib.as_closest_canonical(truth)
    return resample_labels_nearest(
        np.asarray(ras.dataobj).astype(np.uint8), ras.affine, shape, affine
    )
