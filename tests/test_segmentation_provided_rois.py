"""Segmentation stage: provided labels, ROI derivation and the file-level entry points."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.labels import map_label_convention
from radiogenomics.paths import ROIS
from radiogenomics.segmentation import segment_tumor, write_rois
from radiogenomics.segmentation.provided import (
    check_label_grid,
    resample_labels_nearest,
)
from radiogenomics.segmentation.rois import derive_rois


@pytest.mark.parametrize(
    ("convention", "raw", "expected"),
    [
        ("brats", [0, 1, 2, 4], [0, 1, 2, 3]),
        ("brats2013", [0, 1, 2, 3, 4], [0, 1, 2, 1, 3]),
        ("pipeline", [0, 1, 2, 3], [0, 1, 2, 3]),
    ],
)
def test_label_conventions(convention, raw, expected):
    out = map_label_convention(np.array(raw, dtype=np.int16), convention)
    assert out.dtype == np.uint8 and out.tolist() == expected


def test_unexpected_label_values_name_file_and_values():
    with pytest.raises(SubjectError, match=r"values \[3\].*found \[0, 1, 3\]") as err:
        map_label_convention(np.array([0, 1, 3]), "brats", file="x/labels.nii.gz")
    assert "x/labels.nii.gz" in str(err.value)
    with pytest.raises(SubjectError, match=r"values \[4\]"):
        map_label_convention(np.array([0, 4]), "brats", allowed=[0, 1, 2])


def test_nearest_resampling_downsamples_and_keeps_identity():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[2:6, 2:6, 2:6] = 3
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    assert np.array_equal(resample_labels_nearest(lab, aff, lab.shape, aff), lab)
    # A 2 mm grid whose first voxel's outer corner is the 1 mm grid's (centre at 0.5 mm).
    aff2 = np.diag([2.0, 2.0, 2.0, 1.0])
    aff2[:3, 3] = 0.5
    out = resample_labels_nearest(lab, aff, (4, 4, 4), aff2)
    assert set(np.unique(out)) <= {0, 3}
    assert out[1:3, 1:3, 1:3].min() == 3 and out.sum() == 3 * 8


def test_label_grid_check():
    a = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    with pytest.raises(SubjectError, match=r"shape \(4, 4, 5\)"):
        check_label_grid(nib.Nifti1Image(np.zeros((4, 4, 5), np.uint8), np.eye(4)), a, file="l")
    shifted = np.eye(4)
    shifted[0, 3] = 3
    with pytest.raises(SubjectError, match="affines differ"):
        check_label_grid(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), shifted), a, file="l")


def sphere_labels(shape=(40, 40, 40), c=(20, 20, 20), r=6):
    g = np.indices(shape)
    d = np.sqrt(sum((g[i] - c[i]) ** 2 for i in range(3)))
    lab = np.zeros(shape, np.uint8)
    lab[d <= r + 3] = 2
    lab[d <= r] = 3
    lab[d <= r - 3] = 1
    return lab, d


def test_rois_rings_use_spacing_and_brain():
    lab, d = sphere_labels()
    brain = np.ones(lab.shape, bool)
    brain[:, :, :18] = False  # a brain edge cutting through the rings
    rois = derive_rois(lab, brain, (2.0, 2.0, 2.0), [(0, 4), (4, 8)])
    assert rois["whole_tumor"].sum() == (lab > 0).sum()
    assert rois["tumor_core"].sum() == np.isin(lab, (1, 3)).sum()
    assert rois["necrosis"].sum() == (lab == 1).sum()
    assert rois["edema"].sum() == (lab == 2).sum()
    near, far = rois["peritumoral_near"] > 0, rois["peritumoral_far"] > 0
    # At 2 mm voxels, 0-4 mm outside a sphere of radius 9 vox is radius (9, 11] voxels.
    assert not (near & far).any() and not (near & (lab > 0)).any()
    assert not near[:, :, :18].any() and not far[:, :, :18].any()
    dv = d[near]
    assert dv.min() > 9 and dv.max() <= 11.05
    # Discrete surfaces: within half a voxel of the analytic shell.
    assert d[far].min() > 10.5 and d[far].max() <= 13.1
    assert all(r.dtype == np.uint8 for r in rois.values())


def test_empty_labels_give_empty_rois():
    rois = derive_rois(np.zeros((5, 5, 5), np.uint8), np.ones((5, 5, 5), bool), (1, 1, 1))
    assert len(rois) == 7 and all(r.sum() == 0 for r in rois.values())


def write_subject(tmp_path, affine, lab_raw=None):
    """A fake subject folder: prep sequences, brain mask, optional anat labels."""
    sd = tmp_path / "results" / "c" / "sub-01" / "ses-01"
    (sd / "prep").mkdir(parents=True)
    (sd / "anat").mkdir()
    lab, _ = sphere_labels()
    rng = np.random.default_rng(0)
    for s in ("t1", "t1ce", "t2", "flair"):
        img = nib.Nifti1Image(rng.normal(size=lab.shape).astype(np.float32), affine)
        img.set_sform(affine, 1)
        img.set_qform(affine, 1)
        nib.save(img, sd / "prep" / f"{s}.nii.gz")
        nib.save(img, sd / "anat" / f"{s}.nii.gz")
    brain = nib.Nifti1Image(np.ones(lab.shape, np.uint8), affine)
    nib.save(brain, sd / "prep" / "brain_mask.nii.gz")
    seqs = {s: f"{s}.nii.gz" for s in ("t1", "t1ce", "t2", "flair")}
    (sd / "prep" / "manifest.json").write_text(json.dumps({"sequences": seqs, "reference": "t1ce"}))
    anat = {"sequences": seqs, "labels_file": "provided_labels.nii.gz"}
    (sd / "anat" / "manifest.json").write_text(json.dumps(anat))
    raw = np.where(lab == 3, 4, lab).astype(np.int16) if lab_raw is None else lab_raw
    nib.save(nib.Nifti1Image(raw, affine), sd / "anat" / "provided_labels.nii.gz")
    return sd, lab


def test_segment_tumor_provided_end_to_end(tmp_path):
    affine = np.array([[1.5, 0, 0, -30], [0, 1.5, 0, -20], [0, 0, 1.5, 10], [0, 0, 0, 1]])
    sd, lab = write_subject(tmp_path, affine)
    out = sd / "seg" / "tumor_labels.nii.gz"
    segment_tumor(
        "provided",
        sd / "prep/manifest.json",
        sd / "prep/brain_mask.nii.gz",
        out,
        config={"min_tumor_ml": 0.5},
        label_convention="brats",
        provided_labels=sd / "anat/provided_labels.nii.gz",
        anat_manifest=sd / "anat/manifest.json",
    )
    img = nib.load(out)
    ref = nib.load(sd / "prep" / "t1ce.nii.gz")
    assert np.array_equal(img.affine, ref.affine)
    assert np.array_equal(img.get_sform(), ref.get_sform())
    assert img.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(img.dataobj), lab)
    rois = {r: sd / "seg" / "rois" / f"{r}.nii.gz" for r in ROIS}
    counts = write_rois(out, sd / "prep/brain_mask.nii.gz", rois)
    assert counts["enhancing"] == (lab == 3).sum() and counts["peritumoral_near"] > 0
    assert np.array_equal(nib.load(rois["enhancing"]).affine, ref.affine)


def test_segment_tumor_provided_rejects_bad_values_and_tiny_tumour(tmp_path):
    affine = np.eye(4)
    bad = np.zeros((40, 40, 40), np.int16)
    bad[5, 5, 5] = 7
    sd, _ = write_subject(tmp_path, affine, lab_raw=bad)
    with pytest.raises(SubjectError, match=r"values \[7\]"):
        segment_tumor(
            "provided",
            sd / "prep/manifest.json",
            sd / "prep/brain_mask.nii.gz",
            sd / "seg/tumor_labels.nii.gz",
            provided_labels=sd / "anat/provided_labels.nii.gz",
        )
    tiny = np.zeros((40, 40, 40), np.int16)
    tiny[5, 5, 5] = 2
    nib.save(nib.Nifti1Image(tiny, affine), sd / "anat" / "provided_labels.nii.gz")
    with pytest.raises(SubjectError, match="min_tumor_ml"):
        segment_tumor(
            "provided",
            sd / "prep/manifest.json",
            sd / "prep/brain_mask.nii.gz",
            sd / "seg/tumor_labels.nii.gz",
            config={"min_tumor_ml": 0.5},
            provided_labels=sd / "anat/provided_labels.nii.gz",
        )
    assert not (sd / "seg" / "tumor_labels.nii.gz").exists()
