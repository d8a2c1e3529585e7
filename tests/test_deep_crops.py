"""Crops for the cnn strategy: geometry against an analytic image, bad input, batch, cache."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.deep.crops import (
    CropSettings,
    build_crop_set,
    crop_affine,
    load_crop_set,
    save_crop_set,
    session_crop,
)
from radiogenomics.errors import ConfigError, SubjectError
from radiogenomics.paths import subject_dir

SHAPE = (40, 44, 36)
# 2 mm RAS grid with an off-origin translation, as preprocess writes it.
AFFINE = np.array([[2.0, 0, 0, -40], [0, 2.0, 0, -50], [0, 0, 2.0, -30], [0, 0, 0, 1]])
RAMP = {"t1ce": (0.5, -0.2, 0.3), "flair": (-0.1, 0.4, 0.2)}


def _save(data: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))


def world_grid() -> np.ndarray:
    idx = np.indices(SHAPE, dtype=float).reshape(3, -1)
    return (AFFINE[:3, :3] @ idx + AFFINE[:3, 3:4]).reshape(3, *SHAPE)


def make_session(root: Path, cohort="c", subject="S1", session="01", channels=("t1ce", "flair"),
                 roi_centre_vox=(20, 22, 18), roi_affine=AFFINE) -> Path:  # fmt: skip
    """A session with linear-ramp images (brain = whole image) and a spherical whole_tumor ROI."""
    sd = subject_dir(cohort, subject, session, root)
    w = world_grid()
    for name in channels:
        a = RAMP[name]
        _save((100 + a[0] * w[0] + a[1] * w[1] + a[2] * w[2]).astype(np.float32),
              sd / "prep" / f"{name}.nii.gz")  # fmt: skip
    _save(np.ones(SHAPE, np.uint8), sd / "prep" / "brain_mask.nii.gz")
    idx = np.indices(SHAPE)
    roi = sum((idx[a] - roi_centre_vox[a]) ** 2 for a in range(3)) <= 16
    _save(roi.astype(np.uint8), sd / "seg" / "rois" / "whole_tumor.nii.gz", roi_affine)
    manifest = {"sequences": {c: f"{c}.nii.gz" for c in channels}, "missing": {"adc": "no DWI"},
                "brain_mask": "brain_mask.nii.gz"}  # fmt: skip
    (sd / "prep" / "manifest.json").write_text(json.dumps(manifest))
    return sd


SETTINGS = CropSettings(channels=("t1ce", "flair"), roi_channels=("whole_tumor",), spacing_mm=3.0,
                        size=8, clip_z=50.0)  # fmt: skip


def test_crop_matches_the_analytic_ramp(tmp_path):
    sd = make_session(tmp_path)
    crop = session_crop(sd, SETTINGS)
    centre = AFFINE[:3, :3] @ np.array([20.0, 22.0, 18.0]) + AFFINE[:3, 3]
    assert np.allclose(crop.meta["centre_x_mm"], centre[0])
    assert np.allclose(crop.affine, crop_affine(centre, 3.0, 8))
    assert crop.array.shape == (3, 8, 8, 8) and crop.array.dtype == np.float32
    # z-scored ramp: linear in world coordinates; trilinear sampling and the Gaussian prefilter
    # are exact for a linear function away from the image border.
    w = world_grid().reshape(3, -1)
    idx = np.indices((8, 8, 8), dtype=float).reshape(3, -1)
    cw = crop.affine[:3, :3] @ idx + crop.affine[:3, 3:4]
    for c, name in enumerate(("t1ce", "flair")):
        a = np.array(RAMP[name])
        vals = 100 + a @ w
        expect = (100 + a @ cw - vals.mean()) / vals.std()
        assert np.abs(crop.array[c].ravel() - expect).max() < 1e-3
    # ROI channel: the sphere (radius 4 voxels = 8 mm) is centred, so the centre voxels are inside.
    assert crop.array[2, 3:5, 3:5, 3:5].min() > 0.99 and crop.array[2, 0, 0, 0] == 0
    assert crop.meta["roi_voxels"] == 257 and crop.meta["roi_inside_crop"] == 1.0


def test_missing_channel_names_subject_file_and_channel(tmp_path):
    sd = make_session(tmp_path, subject="S7", channels=("t1ce",))
    s = CropSettings(channels=("t1ce", "adc"), size=8)
    with pytest.raises(SubjectError) as exc:
        session_crop(sd, s, {"cohort": "c", "subject": "S7", "session": "01"})
    msg = str(exc.value)
    assert "c/S7/01" in msg and "['adc']" in msg and "no DWI" in msg
    assert exc.value.file == str(sd / "prep" / "manifest.json")


def test_crop_centre_outside_the_image_is_an_error(tmp_path):
    # The ROI file sits 200 mm away from the images (a mask in another space).
    shifted = AFFINE.copy()
    shifted[0, 3] += 200
    sd = make_session(tmp_path, roi_affine=shifted)
    with pytest.raises(SubjectError, match="lies outside the image") as exc:
        session_crop(sd, SETTINGS, {"subject": "S1"})
    assert exc.value.file.endswith("t1ce.nii.gz") and "S1" in str(exc.value)


def test_empty_roi_is_an_error(tmp_path):
    sd = make_session(tmp_path)
    _save(np.zeros(SHAPE, np.uint8), sd / "seg" / "rois" / "whole_tumor.nii.gz")
    with pytest.raises(SubjectError, match="whole_tumor is empty"):
        session_crop(sd, SETTINGS)


def test_batch_records_bad_sessions_and_keeps_the_others(tmp_path):
    make_session(tmp_path, subject="A")
    make_session(tmp_path, subject="B", channels=("t1ce",))  # no flair
    make_session(tmp_path, subject="C", roi_centre_vox=(10, 12, 9))
    failed = make_session(tmp_path, subject="D")
    (failed / "qc").mkdir()
    (failed / "qc" / "failure.json").write_text("{}")
    sessions = pd.DataFrame({"cohort": "c", "subject": list("ABCD"), "session": "01"})
    cs, fails = build_crop_set(sessions, SETTINGS, root=tmp_path)
    assert cs.ids["subject"].tolist() == ["A", "C"]
    assert fails["subject"].tolist() == ["B", "D"]
    assert "['flair']" in fails.loc[0, "message"] and fails.loc[0, "file"].endswith("manifest.json")
    assert fails.loc[1, "message"] == "an earlier step failed"
    alone = session_crop(subject_dir("c", "C", "01", tmp_path), SETTINGS)
    assert np.array_equal(cs.array[1], alone.array) and np.array_equal(cs.affines[1], alone.affine)
    # Rows asked for in another order, with a session that has no crop: NaN row, found False.
    X, found = cs.take(sessions.iloc[[2, 1, 0]])
    assert found.tolist() == [True, False, True]
    assert np.array_equal(X[0], cs.array[1]) and np.isnan(X[1]).all()
    assert np.array_equal(X.iloc[[2]], X[[2]])


def test_cache_round_trip_is_byte_stable_and_checks_settings(tmp_path):
    make_session(tmp_path, subject="A")
    make_session(tmp_path, subject="B", roi_centre_vox=(18, 20, 17))
    cs, _ = build_crop_set([("c", "A", "01"), ("c", "B", "01")], SETTINGS, root=tmp_path)
    p1, p2 = tmp_path / "a.npz", tmp_path / "b.npz"
    save_crop_set(cs, p1)
    back = load_crop_set(p1, SETTINGS)
    assert np.array_equal(back.array, cs.array) and back.channels == SETTINGS.channel_names
    assert back.ids.equals(cs.ids) and np.allclose(back.meta["roi_voxels"], cs.meta["roi_voxels"])
    save_crop_set(back, p2)
    assert p1.read_bytes() == p2.read_bytes()
    with pytest.raises(ConfigError, match="stale cache"):
        load_crop_set(p1, CropSettings(channels=("t1ce", "flair"), size=10))


def test_settings_from_strategy_keys():
    s = CropSettings.from_config({"channels": ["t1ce"], "roi_channels": ["enhancing"],
                                  "crop_mm": 2, "crop_size": 48})  # fmt: skip
    assert s.channel_names == ("t1ce", "roi:enhancing") and s.mask_channels == (1,)
    assert (s.spacing_mm, s.size) == (2.0, 48) and s.digest() != CropSettings().digest()
    with pytest.raises(ConfigError):
        CropSettings.from_config({"channels": []})
