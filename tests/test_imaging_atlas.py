"""Imaging chain: MNI152 registration and the subject -> MNI point mapping used by features."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.imaging.atlas import (
    hemisphere_image,
    load_template,
    read_template,
    register_to_template,
    subject_to_mni_points,
    warp_template_to_subject,
    write_template,
)
from radiogenomics.imaging.common import set_threads


def test_hemisphere_labels_follow_mni_x():
    template, _ = load_template(2)
    hemi = hemisphere_image(template)
    ijk_left = np.rint(np.linalg.inv(template.affine) @ [-40, -20, 10, 1]).astype(int)[:3]
    ijk_right = np.rint(np.linalg.inv(template.affine) @ [40, -20, 10, 1]).astype(int)[:3]
    assert hemi.get_fdata()[tuple(ijk_left)] == 1
    assert hemi.get_fdata()[tuple(ijk_right)] == 2


def test_written_template_reads_back_as_loaded(tmp_path):
    """The run's one-off template files give preprocess jobs exactly what nilearn would."""
    write_template(2, tmp_path / "t1.nii.gz", tmp_path / "wm.nii.gz")
    for loaded, read in zip(
        load_template(2), read_template(tmp_path / "t1.nii.gz", tmp_path / "wm.nii.gz"), strict=True
    ):
        assert read.shape == loaded.shape == (99, 117, 95)
        np.testing.assert_array_equal(read.affine, loaded.affine)
        np.testing.assert_array_equal(np.asarray(read.dataobj), np.asarray(loaded.dataobj))
        assert np.asarray(read.dataobj).dtype == np.float32


@pytest.mark.slow
def test_subject_to_mni_points_recovers_known_shift(tmp_path):
    """A 'subject' that is the template moved by +12 mm in x and -8 mm in z (in world space)."""
    set_threads(2)
    template, _ = load_template(2)
    data = np.asarray(template.dataobj, np.float32)
    shift = np.eye(4)
    shift[:3, 3] = [12.0, 0.0, -8.0]
    subject = nib.Nifti1Image(data, shift @ template.affine)
    brain = data > 0.1
    with tempfile.TemporaryDirectory() as tmp:
        res = register_to_template(subject, brain, template, Path(tmp), transform="affine")
        mat = next(t for t in res["invtransforms"] if t.endswith(".mat"))
        saved = tmp_path / "to_template_affine.mat"
        saved.write_bytes(Path(mat).read_bytes())
        mni = np.array([[0.0, -20.0, 10.0], [-40.0, 10.0, 30.0], [30.0, -60.0, -10.0]])
        subject_pts = mni + [12.0, 0.0, -8.0]
        got = subject_to_mni_points(subject_pts, [saved])
        assert np.abs(got - mni).max() < 1.5, got - mni
        # The template warped into subject space lands on the subject's own intensities.
        back = warp_template_to_subject(template, subject, [str(saved)])
        assert np.corrcoef(back[brain], data[brain])[0, 1] > 0.95


def test_affine_point_mapping_equals_ants(tmp_path):
    """The ANTs-free affine path maps points as ants.apply_transforms_to_points does."""
    import ants
    import pandas as pd

    from radiogenomics.imaging.atlas import LPS, invert_ants_affine_points

    rng = np.random.default_rng(3)
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    matrix = np.eye(3) + rng.normal(0, 0.08, (3, 3))
    tx.set_parameters(np.concatenate([matrix.ravel(), [4.0, -7.5, 2.25]]))
    tx.set_fixed_parameters([10.0, -20.0, 30.0])
    path = tmp_path / "to_template_affine.mat"
    ants.write_transform(tx, str(path))
    pts = rng.uniform(-80, 80, (50, 3))
    df = pd.DataFrame(pts @ LPS.T, columns=["x", "y", "z"])
    want = ants.apply_transforms_to_points(3, df, [str(path)], whichtoinvert=[True])
    got = invert_ants_affine_points(pts @ LPS.T, path)
    np.testing.assert_allclose(got, want[["x", "y", "z"]].to_numpy(), atol=1e-3)
    assert np.abs(got - pts @ LPS.T).max() > 5  # the transform moved the points
    np.testing.assert_allclose(
        subject_to_mni_points(pts, [path]), want[["x", "y", "z"]].to_numpy() @ LPS.T, atol=1e-3
    )


@pytest.mark.slow
def test_syn_point_mapping_follows_a_nonlinear_deformation(tmp_path):
    """Subject = template bent by a known smooth displacement: after SyN the affine plus inverse
    warp map subject points to their template points, better than the affine alone."""
    from scipy import ndimage

    set_threads(2)
    template, _ = load_template(2)
    data = np.asarray(template.dataobj, np.float32)
    ijk = np.indices(data.shape).astype(np.float64)
    # Subject voxel (i, j, k) shows template voxel (i + d, j, k): a 3-voxel (6 mm) bend along x,
    # symmetric in z about the brain's centre, which no affine can undo.
    centre = np.argwhere(data > 0.1)[:, 2].mean()
    bend = 3.0 * np.cos(np.pi * (ijk[2] - centre) / 25)
    subject_data = ndimage.map_coordinates(data, [ijk[0] + bend, ijk[1], ijk[2]], order=1)
    subject = nib.Nifti1Image(subject_data.astype(np.float32), template.affine)
    brain = subject_data > 0.1
    with tempfile.TemporaryDirectory() as tmp:
        res = register_to_template(subject, brain, template, Path(tmp), transform="syn")
        mat = next(t for t in res["invtransforms"] if t.endswith(".mat"))
        inv = next(t for t in res["invtransforms"] if t.endswith("InverseWarp.nii.gz"))
        files = [tmp_path / "to_template_affine.mat", tmp_path / "to_template_invwarp.nii.gz"]
        for src, dst in zip((mat, inv), files, strict=True):
            dst.write_bytes(Path(src).read_bytes())
    rng = np.random.default_rng(0)
    vox = np.argwhere(ndimage.binary_erosion(brain, iterations=5))
    vox = vox[rng.choice(len(vox), 300, replace=False)].astype(np.float64)
    truth_vox = vox.copy()
    truth_vox[:, 0] += 3.0 * np.cos(np.pi * (vox[:, 2] - centre) / 25)
    subject_pts = nib.affines.apply_affine(template.affine, vox)
    truth = nib.affines.apply_affine(template.affine, truth_vox)
    err_syn = np.linalg.norm(subject_to_mni_points(subject_pts, files) - truth, axis=1)
    err_affine = np.linalg.norm(subject_to_mni_points(subject_pts, files[:1]) - truth, axis=1)
    # Measured: median 0.24 mm through SyN, 3.4 mm through the affine alone.
    assert np.median(err_syn) < 1.0, np.median(err_syn)
    assert np.median(err_affine) > 2.0, np.median(err_affine)
