"""Imaging chain: raw, z-scored and already-normalised input intensities before N4 and masking."""

from __future__ import annotations

import json
import logging

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.bias import (
    background_value,
    bias_correct_subject,
    condition_intensities,
    n4_correct_details,
)
from radiogenomics.imaging.reorient import to_ras
from radiogenomics.imaging.skullstrip import looks_skull_stripped, nonzero_mask
from radiogenomics.io import save_nifti
from radiogenomics.segmentation.realdata import block_downsample, zscored

CASE = ("mri", "tcga_lgg_brats_space", "TCGA-FG-6692")


def _real(shared_data, seq: str, factor: int = 2) -> nib.Nifti1Image:
    """A real stripped BraTS-space sequence (RAS), block-averaged to `factor` mm for speed."""
    img = to_ras(nib.load(str(shared_data.joinpath(*CASE, f"{seq}.nii.gz"))))
    return block_downsample(nib.Nifti1Image(np.asarray(img.dataobj, np.float32), img.affine),
                            factor)  # fmt: skip


def test_raw_interpolation_negatives_are_counted_not_hidden(shared_data):
    img = _real(shared_data, "flair", 1)
    data = np.asarray(img.dataobj, np.float32)
    out, fg, info = condition_intensities(data)
    assert info["intensities"] == "raw" and info["detected"] == "raw"
    assert info["background"] == 0.0
    assert info["clipped_negative_voxels"] == int((data < 0).sum()) > 0
    assert out.min() == 0 and np.array_equal(out[data > 0], data[data > 0])


@pytest.mark.parametrize("whole_volume", [False, True])
def test_zscored_input_is_detected_and_shifted_not_clipped(shared_data, whole_volume):
    raw_img = _real(shared_data, "t1")
    raw = np.asarray(raw_img.dataobj, np.float32)
    z = np.asarray(zscored(raw_img, whole_volume).dataobj, np.float32)
    if whole_volume:
        # Background dominates the volume's mean: few brain voxels go negative, the fill does.
        assert z[0, 0, 0] < 0 and (z[raw != 0] < 0).mean() < 0.05
    else:
        assert (z[raw != 0] < 0).mean() > 0.3  # half the brain below 0
    out, fg, info = condition_intensities(z)
    assert info["intensities"] == "normalised"
    assert info["background"] == pytest.approx(float(z[0, 0, 0]))
    # Every brain voxel stays foreground and positive (a clip at 0 kept about half), except,
    # for a whole-volume z-score, the raw image's own interpolation negatives (counted).
    raw_neg = (raw < 0) if whole_volume else np.zeros(raw.shape, bool)
    assert info["clipped_negative_voxels"] == int(raw_neg.sum())
    assert np.array_equal(fg, (raw != 0) & ~raw_neg)
    assert (out[fg] > 0).all() and (out[~fg] == 0).all()
    # The order of intensities is untouched: the shift is one constant.
    assert np.allclose(out[fg] - z[fg], -info["shift"], atol=1e-4)
    if whole_volume:
        # The fill value is the z-score of raw 0: shifting it to 0 gives back raw up to scale.
        ratio = out[fg & (raw > 50)] / raw[fg & (raw > 50)]
        assert ratio.std() / ratio.mean() < 0.01


def test_declared_mode_wins_and_bad_mode_raises(shared_data, caplog):
    z = np.asarray(zscored(_real(shared_data, "t1"), False).dataobj, np.float32)
    with caplog.at_level(logging.WARNING):
        _, _, info = condition_intensities(z, "raw")
    assert info["intensities"] == "raw" and info["detected"] == "normalised"
    assert info["clipped_negative_voxels"] > 0 and "declared raw" in caplog.text
    with pytest.raises(ValueError, match="intensities must be one of"):
        condition_intensities(z, "zscore")


def test_background_value_of_noisy_and_constant_borders():
    rng = np.random.default_rng(0)
    assert background_value(rng.normal(10, 1, (20, 20, 20))) is None
    x = np.full((20, 20, 20), -0.7, np.float32)
    x[5:15, 5:15, 5:15] = rng.normal(0, 1, (10, 10, 10))
    assert background_value(x) == pytest.approx(-0.7)


def test_n4_of_zscored_input_matches_n4_of_raw(shared_data):
    """Whole-volume z-score: the shift restores raw up to scale, so N4 gives the same image up
    to scale; brain-only z-score: N4 runs on every brain voxel (not half) and keeps the order."""
    raw_img = _real(shared_data, "flair")
    raw_n4, info = n4_correct_details(raw_img)
    assert info["n4"] == "run" and info["intensities"] == "raw"
    brain = np.asarray(raw_img.dataobj) > 50
    for whole in (True, False):
        z_n4, info = n4_correct_details(zscored(raw_img, whole))
        assert info["intensities"] == "normalised" and info["n4"] == "run"
        assert (z_n4[brain] > 0).all()
        r = np.corrcoef(raw_n4[brain], z_n4[brain])[0, 1]
        assert r > (0.999 if whole else 0.97), (whole, r)
    skipped, info = n4_correct_details(raw_img, run_n4=False)
    assert info["n4"].startswith("skipped") and np.array_equal(
        skipped, np.clip(np.asarray(raw_img.dataobj), 0, None)
    )


def test_bias_correct_subject_records_what_it_did(shared_data, tmp_path):
    anat = tmp_path / "anat"
    anat.mkdir()
    raw = _real(shared_data, "flair")
    save_nifti(raw, anat / "flair.nii.gz")
    save_nifti(zscored(_real(shared_data, "t1ce"), True), anat / "t1ce.nii.gz")
    manifest = {"cohort": "c", "subject": "s", "session": "1",
                "sequences": {"flair": "flair.nii.gz", "t1ce": "t1ce.nii.gz"}}  # fmt: skip
    (anat / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "n4" / "manifest.json"
    bias_correct_subject(anat / "manifest.json", out)
    m = json.loads(out.read_text())
    assert m["intensity_handling"]["flair"]["intensities"] == "raw"
    assert m["intensity_handling"]["t1ce"]["intensities"] == "normalised"
    assert m["intensity_handling"]["t1ce"]["shift"] < 0 and m["n4_skipped"] == []
    # Declared bias-corrected (config cohorts[].bias_corrected): N4 is skipped.
    bias_correct_subject(anat / "manifest.json", out, bias_corrected=True)
    assert sorted(json.loads(out.read_text())["n4_skipped"]) == ["flair", "t1ce"]
    # Declared normalised (config cohorts[].intensities): the declaration wins and is recorded
    # with what was detected; the raw FLAIR's fill value 0 lies at the bottom of its foreground,
    # so it is read as raw 0 (no shift) and the interpolation negatives below it are counted.
    bias_correct_subject(anat / "manifest.json", out, intensities="normalised")
    flair = json.loads(out.read_text())["intensity_handling"]["flair"]
    assert flair["intensities"] == "normalised" and flair["detected"] == "raw"
    assert flair["shift"] == 0.0 and flair["clipped_negative_voxels"] > 0
    with pytest.raises(SubjectError, match="intensities must be one of"):
        bias_correct_subject(anat / "manifest.json", out, intensities="z")


def test_derived_mask_of_zscored_stripped_data_equals_raw(shared_data):
    raw = np.asarray(_real(shared_data, "t1ce", 1).dataobj, np.float32)
    expected = nonzero_mask(raw)
    for whole in (False, True):
        z = np.asarray(zscored(nib.Nifti1Image(raw, np.eye(4)), whole).dataobj)
        assert looks_skull_stripped(z, voxel_ml=0.001)
        assert np.array_equal(nonzero_mask(z), expected)
