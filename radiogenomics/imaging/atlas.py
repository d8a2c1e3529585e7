"""Imaging chain (preprocessing): registration of the subject to the MNI152 template.

Direction convention (used by features): the registration's fixed image is the template and the
moving image the subject's skull-stripped T1 (else the reference). `to_template_affine.mat` is
therefore ANTs' forward transform for *images* (subject image -> template space); for *points* it
maps template -> subject. `subject_to_mni_points` applies its inverse (and, with SyN, the inverse
warp `to_template_invwarp.nii.gz`), so it maps subject world coordinates (RAS mm, as nibabel's
affine gives them) to MNI RAS mm.

The tumour is not segmented yet at this step: when `mask_abnormal` is on, a crude FLAIR/T2
hyperintensity mask (`abnormal.crude_abnormality_mask`) is removed from the moving mask so the
lesion does not drive the similarity metric; without FLAIR/T2 the whole brain is used.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.abnormal import (
    ABNORMAL_SEQUENCES,
    crude_abnormality_mask,
    sigma_voxels,
)
from radiogenomics.imaging.common import (
    LPS,
    read_manifest,
    save_on,
    seed_ants,
    sequence_paths,
    to_ants,
    voxel_sizes,
)
from radiogenomics.io import load_nifti

log = logging.getLogger(__name__)
STAGE = "register_to_atlas"


def load_template(resolution_mm: int = 2) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """nilearn's packaged MNI152 (2009) T1 brain template and its WM probability map."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=int(resolution_mm))
    wm = datasets.load_mni152_wm_template(resolution=int(resolution_mm))
    return nib.Nifti1Image(np.asarray(t1.get_fdata(), np.float32), t1.affine), nib.Nifti1Image(
        np.asarray(wm.get_fdata(), np.float32), wm.affine
    )


def write_template(resolution_mm: int, t1_out: str | Path, wm_out: str | Path) -> None:
    """Write the registration target and its WM map once per run (nilearn resamples its 1 mm
    files on every load: 1 s that each session's job would otherwise repeat)."""
    for image, out in zip(load_template(resolution_mm), (t1_out, wm_out), strict=True):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, str(out))


def read_template(t1_file: str | Path, wm_file: str | Path) -> tuple[nib.Nifti1Image, ...]:
    """The template pair `write_template` wrote, as float32 images."""
    images = []
    for path in (t1_file, wm_file):
        img = load_nifti(path, stage=STAGE, what="MNI152 template")
        images.append(nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine))
    return tuple(images)


def hemisphere_image(template: nib.Nifti1Image) -> nib.Nifti1Image:
    """Template-space labels: 1 left hemisphere (x < 0), 2 right (x >= 0), 0 outside brain."""
    data = np.asarray(template.dataobj) > 0
    ijk = np.indices(template.shape[:3]).reshape(3, -1)
    x = (template.affine[:3, :3] @ ijk + template.affine[:3, 3:4])[0].reshape(template.shape[:3])
    lab = np.where(x < 0, 1, 2).astype(np.float32) * data
    return nib.Nifti1Image(lab, template.affine)


def register_to_template(
    subject: nib.Nifti1Image,
    brain: np.ndarray,
    template: nib.Nifti1Image,
    workdir: Path,
    *,
    transform: str = "affine",
    exclude: np.ndarray | None = None,
) -> dict:
    """ANTs registration template(fixed) <- subject brain(moving); returns ANTs' result dict."""
    import ants

    data = np.asarray(subject.dataobj, np.float32) * brain
    moving_mask = brain & ~exclude if exclude is not None else brain
    kind = {"affine": "Affine", "syn": "SyN"}[transform]
    return ants.registration(
        fixed=to_ants(template),
        moving=to_ants(subject, data),
        type_of_transform=kind,
        moving_mask=to_ants(subject, moving_mask.astype(np.float32)),
        mask_all_stages=True,
        aff_metric="mattes",
        aff_sampling=32,
        aff_random_sampling_rate=0.2,
        aff_iterations=(1000, 500, 250, 0),
        aff_shrink_factors=(8, 4, 2, 1),
        aff_smoothing_sigmas=(3, 2, 1, 0),
        outprefix=str(workdir) + "/",
    )


def warp_template_to_subject(
    image: nib.Nifti1Image, grid: nib.Nifti1Image, invtransforms: list, interpolator: str = "linear"
) -> np.ndarray:
    """Resample a template-space image onto the subject grid."""
    import ants

    which = [t.endswith(".mat") for t in invtransforms]
    out = ants.apply_transforms(
        fixed=to_ants(grid),
        moving=to_ants(image),
        transformlist=list(invtransforms),
        whichtoinvert=which,
        interpolator=interpolator,
    )
    return out.numpy().astype(np.float32)


def read_ants_affine(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix 3x3, translation, centre) of an ITK/ANTs affine `.mat` file (LPS mm)."""
    from scipy.io import loadmat

    content = loadmat(str(path))
    key = next((k for k in content if k.startswith(("AffineTransform", "MatrixOffset"))), None)
    if key is None or "fixed" not in content:
        raise ValueError(f"{path}: not an ANTs affine transform (keys {sorted(content)})")
    params = np.asarray(content[key], dtype=np.float64).ravel()
    if params.size != 12:
        raise ValueError(f"{path}: expected 12 affine parameters, found {params.size}")
    centre = np.asarray(content["fixed"], dtype=np.float64).ravel()
    return params[:9].reshape(3, 3), params[9:12], centre


def invert_ants_affine_points(points_lps: np.ndarray, transform_file: str | Path) -> np.ndarray:
    """Points (N x 3, LPS mm) through the inverse of an ANTs affine, as
    `ants.apply_transforms_to_points(..., whichtoinvert=[True])` maps them."""
    matrix, translation, centre = read_ants_affine(transform_file)
    # ITK: T(p) = M (p - c) + t + c, so T^-1(q) = M^-1 (q - t - c) + c.
    shifted = np.asarray(points_lps, dtype=np.float64) - translation - centre
    return np.linalg.solve(matrix, shifted.T).T + centre


def subject_to_mni_points(points_mm: np.ndarray, transform_files: list[str | Path]) -> np.ndarray:
    """Map subject world points (N x 3, RAS mm) to MNI152 RAS mm.

    `transform_files`: `prep/to_template_affine.mat`, plus `prep/to_template_invwarp.nii.gz` for SyN
    (order does not matter; a forward warp `to_template_warp.nii.gz` is ignored).
    """
    files = [str(f) for f in transform_files]
    affines = [f for f in files if f.endswith(".mat")]
    # Every non-.mat file is an inverse warp, except a forward warp passed along by mistake.
    forward = ("to_template_warp.nii.gz", "1Warp.nii.gz")
    inv_warps = [f for f in files if not f.endswith(".mat") and not f.endswith(forward)]
    if len(affines) != 1:
        raise ValueError(f"expected exactly one .mat affine among {files}")
    pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    lps = pts @ LPS.T
    if not inv_warps:
        # Affine only: solved here, so feature jobs need not import ANTs (1.3 s per job).
        return invert_ants_affine_points(lps, affines[0]) @ LPS.T
    import ants

    df = pd.DataFrame({"x": lps[:, 0], "y": lps[:, 1], "z": lps[:, 2]})
    # ANTs moves points opposite to images: subject -> template needs the inverse of the image
    # transform, applied affine first, then the inverse warp.
    out = ants.apply_transforms_to_points(
        3, df, affines + inv_warps, whichtoinvert=[True] + [False] * len(inv_warps)
    )
    return out[["x", "y", "z"]].to_numpy() @ LPS.T


def atlas_subject(
    coreg_manifest: str | Path,
    brain_mask: str | Path,
    affine_out: str | Path,
    template_out: str | Path,
    wm_out: str | Path,
    hemisphere_out: str | Path,
    *,
    template_files: tuple[str | Path, str | Path],
    transform: str = "affine",
    mask_abnormal: bool = True,
    warp_out: str | Path | None = None,
    invwarp_out: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """Register a subject to MNI152; write transforms and template maps in subject space.

    `template_files` (T1, WM) are the run's registration target, written once by `write_template`.
    """
    manifest = read_manifest(coreg_manifest, stage=STAGE)
    paths = sequence_paths(coreg_manifest, manifest)
    seq = next((s for s in ("t1", manifest.get("reference", "t1ce")) if s in paths), None)
    if seq is None:
        raise SubjectError(
            "no T1 or reference image for atlas registration", stage=STAGE, file=coreg_manifest
        )
    img = load_nifti(paths[seq], stage=STAGE, what=f"co-registered {seq}")
    mask_img = load_nifti(brain_mask, stage=STAGE, what="brain mask")
    brain = np.asarray(mask_img.dataobj) > 0
    if brain.shape != img.shape:
        raise SubjectError(
            f"brain mask shape {brain.shape} != image shape {img.shape}",
            stage=STAGE,
            file=brain_mask,
        )
    exclude = None
    abn_seq = next((s for s in ABNORMAL_SEQUENCES if s in paths), None)
    if mask_abnormal and abn_seq:
        abn = np.asarray(load_nifti(paths[abn_seq], stage=STAGE).dataobj, np.float32)
        sp = voxel_sizes(img.affine)
        exclude = crude_abnormality_mask(
            abn, brain, float(np.prod(sp)) / 1000, sigma_vox=sigma_voxels(sp.mean())
        )
        log.info(
            "excluding %d crude abnormal voxels (%s) from the atlas metric", exclude.sum(), abn_seq
        )
    template, wm = read_template(*template_files)
    seed_ants(seed)
    tmp = Path(tempfile.mkdtemp(prefix="atlas_"))
    try:
        res = register_to_template(img, brain, template, tmp, transform=transform, exclude=exclude)
        inv = list(res["invtransforms"])
        mat = next(t for t in inv if t.endswith(".mat"))
        Path(affine_out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mat, affine_out)
        local_inv = [str(affine_out)]
        if transform == "syn":
            fwd_warp = next(t for t in res["fwdtransforms"] if t.endswith("Warp.nii.gz"))
            inv_warp = next(t for t in inv if t.endswith("InverseWarp.nii.gz"))
            shutil.copyfile(fwd_warp, warp_out)
            shutil.copyfile(inv_warp, invwarp_out)
            local_inv.append(str(invwarp_out))
        t_in_s = warp_template_to_subject(template, img, local_inv)
        wm_in_s = warp_template_to_subject(wm, img, local_inv)
        hemi = warp_template_to_subject(
            hemisphere_image(template), img, local_inv, interpolator="nearestNeighbor"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save_on(t_in_s, img, template_out)
    save_on(np.clip(wm_in_s, 0, 1), img, wm_out)
    save_on(hemi.astype(np.uint8), img, hemisphere_out, dtype=np.uint8)
    from radiogenomics.imaging.coregister import normalised_cross_correlation

    ncc = normalised_cross_correlation(np.asarray(img.dataobj), t_in_s, brain & (t_in_s > 0))
    log.info("atlas %s on %s: NCC with template in brain %.3f", transform, seq, ncc)
    return {"sequence": seq, "ncc": ncc, "transform": transform}
