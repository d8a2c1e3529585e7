"""Imaging chain: rigid co-registration accuracy on a real image moved by a known transform."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.common import LPS, check_image_usable, set_threads, to_ants
from radiogenomics.imaging.coregister import (
    RigidSettings,
    mutual_information,
    normalised_cross_correlation,
    resample_to_grid,
    rigid_register,
)
from radiogenomics.imaging.reorient import to_ras


def _rigid(angles_deg, translation_mm) -> np.ndarray:
    """4x4 rigid transform (RAS mm) from Euler angles and a translation."""
    ax, ay, az = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    t = np.eye(4)
    t[:3, :3] = rz @ ry @ rx
    t[:3, 3] = translation_mm
    return t


def test_mutual_information_detects_alignment():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 30, 30)).cumsum(axis=0)
    mask = np.ones(a.shape, bool)
    assert mutual_information(a, a, mask) > mutual_information(a, np.roll(a, 5, axis=1), mask)
    assert normalised_cross_correlation(a, 2 * a + 1, mask) == pytest.approx(1.0)


def test_blank_image_is_a_subject_error(tmp_path):
    with pytest.raises(SubjectError, match="blank or constant"):
        check_image_usable(np.zeros((10, 10, 10)), stage="x", file=tmp_path / "t2.nii.gz")
    bad = np.ones((10, 10, 10))
    bad[0, 0, 0] = np.nan
    with pytest.raises(SubjectError, match="NaN"):
        check_image_usable(bad, stage="x", file=tmp_path / "t2.nii.gz")


@pytest.mark.slow
def test_rigid_registration_recovers_known_transform(shared_data):
    set_threads(2)
    src = shared_data / "mri" / "tcga_lgg_brats_space" / "TCGA-DU-7294" / "t1ce.nii.gz"
    fixed = to_ras(nib.load(str(src)))
    data = np.asarray(fixed.dataobj, np.float32)
    # Crop to the brain's bounding box (+margin) to keep the test quick on 2 cores.
    nz = np.argwhere(data > 0)
    lo, hi = np.maximum(nz.min(0) - 8, 0), np.minimum(nz.max(0) + 9, data.shape)
    crop = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    aff = fixed.affine.copy()
    aff[:3, 3] = (fixed.affine @ np.r_[lo, 1])[:3]
    fixed = nib.Nifti1Image(crop, aff)

    # Moving = same anatomy, placed by a known rigid T, then resampled to thick 1.2x1.2x3 mm slices.
    truth = _rigid((4.0, -3.0, 6.0), (6.0, -4.0, 5.0))
    moved = nib.Nifti1Image(crop, truth @ aff)
    import ants

    thick = ants.resample_image(to_ants(moved), (1.2, 1.2, 3.0), use_voxels=False, interp_type=0)
    from radiogenomics.imaging.common import ants_affine

    moving = nib.Nifti1Image(thick.numpy(), ants_affine(thick))

    with tempfile.TemporaryDirectory() as tmp:
        fwd = rigid_register(fixed, moving, RigidSettings(), Path(tmp))
        # Brain voxel centres of the fixed image (subsampled) in world mm.
        pts = np.argwhere(crop > 0)[::97]
        world = (aff @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
        lps = world @ LPS.T
        df = pd.DataFrame({"x": lps[:, 0], "y": lps[:, 1], "z": lps[:, 2]})
        # ANTs' forward transforms map fixed points to the corresponding moving points.
        est = ants.apply_transforms_to_points(3, df, fwd)[["x", "y", "z"]].to_numpy() @ LPS.T
        true = (truth @ np.c_[world, np.ones(len(world))].T).T[:, :3]
        err = np.linalg.norm(est - true, axis=1)
        before = np.linalg.norm(world - true, axis=1)
        assert before.mean() > 8.0  # the misalignment is real
        assert err.mean() <= 1.0, f"mean displacement error {err.mean():.2f} mm"

        grid = nib.Nifti1Image(np.zeros(crop.shape, np.float32), aff)
        after = resample_to_grid(moving, grid, fwd)
        header_only = resample_to_grid(moving, grid, [])
        mask = crop > 0
        assert mutual_information(crop, after, mask) > mutual_information(crop, header_only, mask)
