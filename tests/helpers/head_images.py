"""Test helpers (imaging chain): synthetic heads on oblique grids, written as NIfTI."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from radiogenomics.io import save_nifti


def oblique_affine(spacing=(2.0, 2.0, 2.5), angle_deg=7.0) -> np.ndarray:
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(spacing)
    aff[:3, 3] = [-40.0, -45.0, -30.0]
    return aff


def synthetic_head(shape=(40, 44, 32), seed=0, contrast=1.0) -> np.ndarray:
    """Ellipsoidal 'head': bright shell (scalp), a brain with two tissue classes, zero air."""
    rng = np.random.default_rng(seed)
    ii = np.indices(shape).astype(float)
    c = (np.array(shape) - 1) / 2
    r = np.sqrt(
        (((ii - c[:, None, None, None]) / (np.array(shape)[:, None, None, None] * 0.42)) ** 2).sum(
            0
        )
    )
    img = np.zeros(shape, np.float32)
    img[r < 1.0] = 300
    img[r < 0.85] = 200 * contrast
    img[(r < 0.5)] = 120 * contrast
    img[(r < 0.85) & (ii[0] > c[0] + 4) & (ii[1] > c[1])] = 260 * contrast
    return img + rng.normal(0, 3, shape).astype(np.float32) * (img > 0)


def write_image(img_data, aff, path, qs_differ=False):
    img = nib.Nifti1Image(img_data.astype(np.int16), aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    save_nifti(img, path)
