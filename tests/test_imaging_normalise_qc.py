"""Imaging chain: intensity normalisation (z-score, WhiteStripe-like, Nyul, rCBV) and QC metrics."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.imaging.abnormal import crude_abnormality_mask
from radiogenomics.imaging.normalise import (
    contralateral_hemisphere,
    histogram_match,
    normalise_subject,
    zscore,
)
from radiogenomics.imaging.qc import border_fraction, flag_metrics, qc_subject, tumour_volumes
from radiogenomics.io import save_nifti


def test_zscore_and_histogram_matching():
    rng = np.random.default_rng(1)
    data = rng.normal(100, 20, (20, 20, 20)).astype(np.float32)
    brain = np.zeros(data.shape, bool)
    brain[2:18, 2:18, 2:18] = True
    z, info = zscore(data, brain)
    assert abs(z[brain].mean()) < 1e-5 and abs(z[brain].std() - 1) < 1e-5
    matched, info = histogram_match(data, brain)
    # Deciles of the brain land on 10, 20, ..., 90 of the standard scale.
    assert np.allclose(np.percentile(matched[brain], [10, 50, 90]), [10, 50, 90], atol=0.5)
    assert np.all(np.diff(info["landmarks"]) > 0)


def test_crude_abnormality_and_contralateral_side():
    shape = (40, 40, 30)
    rng = np.random.default_rng(2)
    flair = rng.normal(100, 5, shape).astype(np.float32)
    brain = np.zeros(shape, bool)
    brain[4:36, 4:36, 4:26] = True
    flair[8:16, 15:25, 10:20] = 180  # lesion in the left half (x < 20)
    abn = crude_abnormality_mask(flair, brain, voxel_ml=0.008, min_ml=0.1)
    lesion = np.zeros(shape, bool)
    lesion[8:16, 15:25, 10:20] = True
    assert (abn & lesion).sum() / lesion.sum() > 0.95
    smoothed = crude_abnormality_mask(flair, brain, voxel_ml=0.008, min_ml=0.1, sigma_vox=1.0)
    assert (smoothed & lesion).sum() / lesion.sum() > 0.9
    # Generous at the border (3 sigma of smoothing + 1 dilation + 2), but nothing far away.
    near = ndimage.binary_dilation(lesion, iterations=6)
    assert (smoothed & ~near).sum() == 0
    hemi = np.where(np.indices(shape)[0] < 20, 1, 2)
    assert contralateral_hemisphere(hemi, abn) == 2
    assert contralateral_hemisphere(hemi, np.zeros(shape, bool)) is None


def _save(arr, path, aff):
    save_nifti(nib.Nifti1Image(np.asarray(arr, np.float32), aff), path)


def test_rcbv_relative_to_contralateral_nawm_and_adc_unchanged(tmp_path):
    shape, aff = (40, 40, 30), np.diag([2.0, 2.0, 2.0, 1.0])
    coreg = tmp_path / "prep" / "coreg"
    coreg.mkdir(parents=True)
    rng = np.random.default_rng(3)
    x = np.indices(shape)[0]
    brain = np.zeros(shape, bool)
    brain[4:36, 4:36, 4:26] = True
    wm = np.zeros(shape, np.float32)
    wm[6:34, 6:34, 12:20] = 1.0
    hemi = np.where(x < 20, 1, 2) * brain
    flair = rng.normal(100, 5, shape)
    flair[8:16, 15:25, 10:20] = 200  # left-hemisphere lesion
    rcbv = np.where(x < 20, 3.0, 2.0) + rng.normal(0, 0.01, shape)  # left raised by the tumour
    adc = rng.uniform(700, 900, shape)
    for name, arr in {"flair": flair, "t1ce": flair * 0.5 + 20, "rcbv": rcbv, "adc": adc}.items():
        _save(arr, coreg / f"{name}.nii.gz", aff)
    (coreg / "manifest.json").write_text(
        json.dumps(
            {
                "cohort": "c",
                "subject": "1",
                "session": "1",
                "reference": "t1ce",
                "sequences": {s: f"{s}.nii.gz" for s in ("flair", "t1ce", "rcbv", "adc")},
            }
        )
    )
    for name, arr in {"brain_mask": brain, "wm": wm, "hemi": hemi}.items():
        _save(arr, tmp_path / "prep" / f"{name}.nii.gz", aff)
    details = normalise_subject(
        coreg / "manifest.json",
        tmp_path / "prep/brain_mask.nii.gz",
        tmp_path / "prep/wm.nii.gz",
        tmp_path / "prep/hemi.nii.gz",
        tmp_path / "prep/manifest.json",
        wm_threshold=0.9,
    )
    assert details["rcbv"]["hemisphere"] == "right"
    out = nib.load(str(tmp_path / "prep/rcbv.nii.gz")).get_fdata()
    nawm_right = (wm > 0.9) & brain & (x >= 20)
    assert abs(np.median(out[nawm_right]) - 1.0) < 0.01
    assert abs(np.median(out[(wm > 0.9) & brain & (x < 20)]) - 1.5) < 0.02
    adc_out = nib.load(str(tmp_path / "prep/adc.nii.gz")).get_fdata()
    assert np.allclose(adc_out[brain], adc[brain], rtol=1e-6)
    assert np.all(adc_out[~brain] == 0)


def test_qc_metrics_volumes_flags_and_overlay(tmp_path):
    shape, aff = (30, 30, 30), np.diag([2.0, 2.0, 2.0, 1.0])
    prep = tmp_path / "prep"
    (prep / "coreg").mkdir(parents=True)
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, shape).cumsum(0)
    brain = np.zeros(shape, bool)
    brain[3:27, 3:27, 0:27] = True  # touches the z=0 border: must be flagged
    labels = np.zeros(shape, np.uint8)
    labels[10:14, 10:14, 10:14] = 2
    labels[11:13, 11:13, 11:13] = 3
    labels[11, 11, 11] = 1
    for s, arr in {"t1ce": base, "flair": base * 2 + rng.normal(0, 0.1, shape)}.items():
        _save(arr, prep / "coreg" / f"{s}.nii.gz", aff)
        _save(arr, prep / f"{s}.nii.gz", aff)
    man = {
        "cohort": "c",
        "subject": "1",
        "session": "1",
        "reference": "t1ce",
        "sequences": {"t1ce": "t1ce.nii.gz", "flair": "flair.nii.gz"},
    }
    (prep / "coreg" / "manifest.json").write_text(json.dumps(man))
    (prep / "manifest.json").write_text(json.dumps(man))
    _save(brain, prep / "brain_mask.nii.gz", aff)
    _save(labels, tmp_path / "labels.nii.gz", aff)
    pd.DataFrame(
        {"sequence": ["t1ce", "flair"], "mi_before": [np.nan, 0.2], "mi_after": [3.0, 0.9]}
    ).to_csv(prep / "coreg/similarity.tsv", sep="\t", index=False)
    table = qc_subject(
        prep / "manifest.json",
        prep / "coreg/manifest.json",
        prep / "brain_mask.nii.gz",
        tmp_path / "labels.nii.gz",
        prep / "coreg/similarity.tsv",
        tmp_path / "qc/overlay.png",
        tmp_path / "qc/metrics.tsv",
    )
    row = table.iloc[0]
    assert row["brain_volume_ml"] == brain.sum() * 0.008
    assert row["whole_tumor_ml"] == 64 * 0.008
    assert row["enhancing_ml"] == 7 * 0.008 and row["necrosis_ml"] == 0.008
    assert row["mi_gain_flair"] == 0.9 - 0.2
    assert row["mi_flair"] > 1.0
    assert "mask_border_fraction_high" in row["flags"]
    assert "brain_volume_ml_low" in row["flags"]  # 110 ml is not a brain
    png = (tmp_path / "qc/overlay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_border_fraction_and_flags():
    m = np.zeros((10, 10, 10), bool)
    m[2:8, 2:8, 2:8] = True
    assert border_fraction(m) == 0.0
    m[0, 2:8, 2:8] = True
    assert border_fraction(m) == 36 / (216 + 36)
    assert tumour_volumes(np.array([[[0, 1, 2, 3, 3]]]), 0.5)["enhancing_ml"] == 1.0
    flags = flag_metrics(
        {"brain_volume_ml": 3000.0, "mi_t2": 0.05, "mi_t1": 0.5},
        {"brain_volume_ml": [800, 2200], "mi": [0.1, 100]},
    )
    assert flags == ["brain_volume_ml_high", "mi_t2_low"]
