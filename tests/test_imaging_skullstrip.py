"""Imaging chain: skull stripping (HD-BET on CPU, non-zero masks for stripped data)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.imaging import skullstrip
from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import dice, set_threads, to_ants
from radiogenomics.imaging.coregister import coregister_subject
from radiogenomics.imaging.reorient import to_ras
from radiogenomics.imaging.skullstrip import (
    from_hdbet_array,
    looks_skull_stripped,
    nonzero_mask,
    skullstrip_subject,
    to_hdbet_array,
)
from radiogenomics.io import save_nifti

RAW = ("mri", "tcga_lgg_raw_wholehead", "TCGA-FG-6692")
BRATS = ("mri", "tcga_lgg_brats_space", "TCGA-DU-7294")


def test_hdbet_axis_order_roundtrip():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert to_hdbet_array(a).shape == (4, 3, 2)
    assert np.array_equal(from_hdbet_array(to_hdbet_array(a)), a)


def test_missing_weights_error_names_expected_path(tmp_path, monkeypatch):
    monkeypatch.setattr(skullstrip, "hdbet_model_dir", lambda: tmp_path / "models")
    with pytest.raises(SubjectError, match=str(tmp_path / "models" / "0.model")):
        skullstrip.check_hdbet_weights(1)


def test_shipped_weights_are_present():
    assert len(skullstrip.check_hdbet_weights(5)) == 5


def test_stripped_detection_on_real_data(shared_data):
    stripped = to_ras(nib.load(str(shared_data.joinpath(*BRATS, "t1ce.nii.gz"))))
    head = to_ras(nib.load(str(shared_data.joinpath(*RAW, "t1ce.nii.gz"))))
    assert looks_skull_stripped(np.asarray(stripped.dataobj), voxel_ml=0.001)
    assert not looks_skull_stripped(np.asarray(head.dataobj))
    # A whole head sitting in exact zeros (noise-free background) is too big to be a brain.
    head_zeroed = np.where(np.asarray(head.dataobj) > 60, np.asarray(head.dataobj), 0)
    zooms = head.header.get_zooms()[:3]
    assert not looks_skull_stripped(head_zeroed, voxel_ml=float(np.prod(zooms)) / 1000)
    # The non-zero mask of stripped data matches the union of non-zero voxels (filled).
    data = np.asarray(stripped.dataobj)
    mask = nonzero_mask(data)
    assert dice(mask, data != 0) > 0.99
    vol_ml = mask.sum() * np.prod(stripped.header.get_zooms()[:3]) / 1000
    assert 900 < vol_ml < 1900


@pytest.mark.slow
def test_chain_on_real_whole_head(shared_data, tmp_path):
    """Raw TCGA-FG-6692: N4 -> rigid co-registration to T1ce at 1 mm -> HD-BET (fast, CPU, no TTA).

    The brain mask (from the co-registered T1) brought back to the native T1ce grid must match the
    HD-BET mask shipped there (Dice >= 0.95), and co-registration must raise MI for every sequence.
    """
    import ants

    set_threads(2)
    sd = tmp_path / "results" / "tcga" / "sub-6692" / "ses-1"
    (sd / "anat").mkdir(parents=True)
    seqs = ("t1", "t1ce", "t2", "flair")
    for seq in seqs:
        save_nifti(to_ras(nib.load(str(shared_data.joinpath(*RAW, f"{seq}.nii.gz")))),
                   sd / "anat" / f"{seq}.nii.gz")  # fmt: skip
    manifest = {"cohort": "tcga", "subject": "6692", "session": "1",
                "sequences": {s: f"{s}.nii.gz" for s in seqs}}  # fmt: skip
    (sd / "anat" / "manifest.json").write_text(json.dumps(manifest))
    prep = sd / "prep"
    bias_correct_subject(sd / "anat/manifest.json", prep / "n4/manifest.json")
    table = coregister_subject(prep / "n4/manifest.json", prep / "coreg/manifest.json",
                               prep / "coreg/similarity.tsv", resample_mm=1.0)  # fmt: skip
    moved = table[table["sequence"] != "t1ce"]
    assert set(moved["sequence"]) == {"t1", "t2", "flair"}
    assert (moved["method"] == "rigid").all()
    assert (moved["mi_after"] > moved["mi_before"] + 0.1).all()

    info = skullstrip_subject(prep / "coreg/manifest.json", prep / "brain_mask.nii.gz")
    assert info["method"] == "hdbet" and info["sequence"] == "t1"
    assert 1300 < info["volume_ml"] < 1900
    ref = to_ras(nib.load(str(shared_data.joinpath(*RAW, "hdbet_brain_mask_t1ce.nii.gz"))))
    mask_img = nib.load(str(prep / "brain_mask.nii.gz"))
    back = ants.resample_image_to_target(
        to_ants(mask_img, np.asarray(mask_img.dataobj, np.float32)),
        to_ants(ref),
        interp_type="nearestNeighbor",
    ).numpy()
    assert dice(back, np.asarray(ref.dataobj)) >= 0.95


def test_implausible_brain_volume_fails_the_subject(tmp_path):
    coreg = tmp_path / "prep" / "coreg"
    coreg.mkdir(parents=True)
    data = np.zeros((30, 30, 30), np.float32)
    data[10:20, 10:20, 10:20] = 100.0  # a 1000-voxel 'brain' of 8 ml at 2 mm
    save_nifti(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), coreg / "t1ce.nii.gz")
    (coreg / "manifest.json").write_text(
        json.dumps({"reference": "t1ce", "sequences": {"t1ce": "t1ce.nii.gz"}})
    )
    with pytest.raises(SubjectError, match=r"brain mask volume 8 ml outside"):
        skullstrip_subject(coreg / "manifest.json", tmp_path / "prep/brain_mask.nii.gz")
    assert not (tmp_path / "prep/brain_mask.nii.gz").exists()


def test_hdbet_precision_choice():
    assert skullstrip.hdbet_precision("float32") == "float32"
    assert skullstrip.hdbet_precision("bfloat16") == "bfloat16"
    assert skullstrip.hdbet_precision("auto", device="0") == "float32"
    assert skullstrip.hdbet_precision("auto") in {"float32", "bfloat16"}
