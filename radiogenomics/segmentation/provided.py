"""Imaging chain (segmentation): cohort-provided tumour labels mapped to the pipeline convention.

The intake copies the cohort's label image (RAS, raw values). Here the raw values are mapped to
1 necrosis/non-enhancing core, 2 oedema, 3 enhancing, and the image is resampled with nearest
neighbour onto the reference grid of the preprocessed sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.labels import map_label_convention

STAGE = "segment_tumor"


def resample_labels_nearest(
    labels: np.ndarray,
    labels_affine: np.ndarray,
    ref_shape: tuple[int, ...],
    ref_affine: np.ndarray,
) -> np.ndarray:
    """Nearest-neighbour resampling of a label array onto a reference grid via world coordinates."""
    labels = np.asarray(labels)
    ref_shape = tuple(int(s) for s in ref_shape[:3])
    if labels.shape[:3] == ref_shape and np.allclose(labels_affine, ref_affine, atol=1e-4):
        return labels.astype(np.uint8, copy=True)
    vox2vox = np.linalg.inv(labels_affine) @ ref_affine
    out = np.zeros(ref_shape, dtype=np.uint8)
    ii, jj = np.meshgrid(np.arange(ref_shape[1]), np.arange(ref_shape[2]), indexing="ij")
    # Slice by slice keeps the index arrays small on 1 mm grids.
    for i in range(ref_shape[0]):
        pts = np.stack([np.full(ii.shape, i), ii, jj, np.ones(ii.shape)], 0).reshape(4, -1)
        src = np.rint((vox2vox @ pts)[:3]).astype(np.int64)
        inside = np.all((src >= 0) & (src < np.asarray(labels.shape[:3])[:, None]), axis=0)
        vals = np.zeros(src.shape[1], dtype=np.uint8)
        vals[inside] = labels[src[0, inside], src[1, inside], src[2, inside]]
        out[i] = vals.reshape(ii.shape)
    return out


def provided_labels_on_reference(
    labels_img: nib.Nifti1Image,
    reference: nib.Nifti1Image,
    convention: str,
    *,
    file: str | Path | None = None,
    allowed: Iterable[int] | None = None,
) -> np.ndarray:
    """Provided label image -> pipeline labels on the reference grid (uint8)."""
    data = np.asarray(labels_img.dataobj)
    if data.ndim != 3:
        raise SubjectError(
            f"provided labels must be 3-D, got shape {data.shape}", stage=STAGE, file=file
        )
    mapped = map_label_convention(data, convention, file=file, allowed=allowed, stage=STAGE)
    return resample_labels_nearest(mapped, labels_img.affine, reference.shape, reference.affine)


def check_label_grid(
    labels_img: nib.Nifti1Image, anat_img: nib.Nifti1Image, *, file: str | Path | None = None
) -> None:
    """The label image must share the grid of the anatomical images it came with."""
    shape, anat_shape = tuple(labels_img.shape[:3]), tuple(anat_img.shape[:3])
    if shape != anat_shape:
        raise SubjectError(
            f"provided labels have shape {shape}, the anatomical images {anat_shape}",
            stage=STAGE,
            file=file,
        )
    # Same shape but another field of view would put the tumour in the wrong place.
    if not np.allclose(labels_img.affine, anat_img.affine, atol=1e-3):
        raise SubjectError(
            "provided labels are not on the grid of the anatomical images (affines differ: "
            f"{np.round(labels_img.affine, 3).tolist()} vs "
            f"{np.round(anat_img.affine, 3).tolist()})",
            stage=STAGE,
            file=file,
        )
