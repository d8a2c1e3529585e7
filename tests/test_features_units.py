"""Features stage: lesion_wide/histogram values, row layout and bad-input handling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.feature_subject import AFF, SHAPE, make_subject, roi_paths, save_image
from scipy import stats

from radiogenomics.errors import SubjectError
from radiogenomics.features import run_histogram, run_lesion_wide, run_perturbed
from radiogenomics.features.histogram import entropy_uniformity, histogram_stats


def test_histogram_stats_match_scipy_reference():
    rng = np.random.default_rng(1)
    v = rng.gamma(2.0, 1.0, 5000)
    h = histogram_stats(v, [5, 50, 95], 64)
    assert h["p05"] == pytest.approx(np.percentile(v, 5))
    assert h["p50"] == pytest.approx(np.median(v))
    assert h["skewness"] == pytest.approx(stats.skew(v))
    # Excess kurtosis: a gamma(2) has theoretical excess kurtosis 6/k = 3.
    assert h["kurtosis"] == pytest.approx(stats.kurtosis(v), rel=1e-9)
    assert 2.0 < h["kurtosis"] < 4.0
    assert h["mad"] == pytest.approx(np.mean(np.abs(v - v.mean())))


def test_entropy_uniformity_known_values():
    # Two equally filled bins: entropy 1 bit, uniformity 0.5; a flat ROI: 0 and 1.
    assert entropy_uniformity(np.array([0.0, 0.0, 1.0, 1.0]), 2) == pytest.approx((1.0, 0.5))
    assert entropy_uniformity(np.full(10, 3.0), 64) == pytest.approx((0.0, 1.0))


def test_lesion_wide_values_and_layout(tmp_path):
    sd = make_subject(tmp_path)
    out = sd / "features" / "lesion_wide.tsv"
    df = run_lesion_wide(sd / "prep" / "manifest.json", roi_paths(sd), out)
    row = pd.read_csv(out, sep="\t").iloc[0]
    assert list(df.columns[:3]) == ["cohort", "subject", "session"]
    assert df.columns[-1] == "qc_reason"
    adc = nib.load(str(sd / "prep" / "adc.nii.gz")).get_fdata()
    wt = nib.load(str(sd / "seg" / "rois" / "whole_tumor.nii.gz")).get_fdata() > 0
    assert row["lesion_wide__adc__whole_tumor__median"] == pytest.approx(
        np.median(adc[wt]), rel=1e-6
    )
    assert row["lesion_wide__adc__whole_tumor__p90"] == pytest.approx(
        np.percentile(adc[wt], 90), rel=1e-6
    )
    assert row["lesion_wide__all__whole_tumor__volume_ml"] == pytest.approx(wt.sum() * 8 / 1000)
    # rcbv is absent: NaN with the manifest's reason, naming the subject.
    assert np.isnan(row["lesion_wide__rcbv__whole_tumor__median"])
    assert "demo/S1/01" in row["qc_reason"] and "rcbv not available" in row["qc_reason"]


def test_empty_and_tiny_roi_give_nan_and_reason(tmp_path):
    sd = make_subject(tmp_path)
    save_image(np.zeros(SHAPE, np.uint8), sd / "seg" / "rois" / "enhancing.nii.gz")
    tiny = np.zeros(SHAPE, np.uint8)
    tiny[12, 12, 12:15] = 1
    save_image(tiny, sd / "seg" / "rois" / "necrosis.nii.gz")
    df = run_histogram(sd / "prep" / "manifest.json", roi_paths(sd), sd / "features" / "h.tsv")
    row = df.iloc[0]
    assert np.isnan(row["histogram__t1__enhancing__p50"])
    assert np.isnan(row["histogram__t1__necrosis__p50"])
    assert not np.isnan(row["histogram__t1__whole_tumor__p50"])
    assert "ROI enhancing is empty" in row["qc_reason"]
    assert "necrosis has 3 voxels < min_roi_voxels=20" in row["qc_reason"]


def test_nan_in_map_and_geometry_mismatch(tmp_path):
    sd = make_subject(tmp_path, maps=("adc", "rcbv"))
    adc = nib.load(str(sd / "prep" / "adc.nii.gz")).get_fdata()
    adc[14, 12, 12] = np.nan
    save_image(adc.astype(np.float32), sd / "prep" / "adc.nii.gz")
    shifted = AFF.copy()
    shifted[0, 3] = 5.0
    rcbv = nib.load(str(sd / "prep" / "rcbv.nii.gz")).get_fdata()
    save_image(rcbv.astype(np.float32), sd / "prep" / "rcbv.nii.gz", shifted)
    row = run_lesion_wide(sd / "prep" / "manifest.json", roi_paths(sd), sd / "features" / "l.tsv")
    row = row.iloc[0]
    assert np.isnan(row["lesion_wide__adc__whole_tumor__mean"])
    assert not np.isnan(row["lesion_wide__adc__peritumoral_far__mean"])  # NaN voxel not there
    assert np.isnan(row["lesion_wide__rcbv__whole_tumor__mean"])
    assert "non-finite" in row["qc_reason"] and "adc.nii.gz" in row["qc_reason"]
    assert "rcbv grid" in row["qc_reason"] and "rcbv.nii.gz" in row["qc_reason"]


def test_unreadable_input_raises_subject_error(tmp_path):
    sd = make_subject(tmp_path)
    (sd / "prep" / "t1.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(SubjectError, match="t1.nii.gz"):
        run_histogram(sd / "prep" / "manifest.json", roi_paths(sd), sd / "features" / "h.tsv")


def test_perturbed_long_table(tmp_path):
    sd = make_subject(tmp_path)
    df = run_perturbed(
        sd / "prep" / "manifest.json",
        roi_paths(sd),
        sd / "prep" / "brain_mask.nii.gz",
        sd / "features" / "perturbed.tsv",
    )
    assert set(df["perturbation"]) == {"original", "erode1", "dilate1"}
    vol = df[df["feature"] == "lesion_wide__all__whole_tumor__volume_ml"].set_index("perturbation")
    assert vol.loc["erode1", "value"] < vol.loc["original", "value"] < vol.loc["dilate1", "value"]
    assert list(df.columns) == ["cohort", "subject", "session", "perturbation", "feature", "value"]


def test_rows_are_byte_identical_on_rerun(tmp_path):
    sd = make_subject(tmp_path)
    out = sd / "features" / "histogram.tsv"
    run_histogram(sd / "prep" / "manifest.json", roi_paths(sd), out)
    first = out.read_bytes()
    run_histogram(sd / "prep" / "manifest.json", roi_paths(sd), out)
    assert out.read_bytes() == first
