"""Features stage: radiomics extraction (shared filters == pyradiomics per ROI; bad input)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import SimpleITK as sitk
from helpers.feature_subject import SHAPE, make_subject, roi_paths, save_image

from radiogenomics.features import run_radiomics
from radiogenomics.features.radiomics import (
    extract_per_roi,
    extract_shared,
    feature_keys,
    make_extractor,
    make_extractor_from_dict,
)


def test_shared_filters_identical_to_per_roi_execute(project_root):
    rng = np.random.default_rng(3)
    arr = rng.normal(0, 1, (28, 30, 32))
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.2))
    g = np.indices(arr.shape)
    masks = {}
    for name, (c, r) in {
        "a": ((14, 15, 16), 6),
        "b": ((10, 12, 20), 4),
        "c": ((18, 18, 10), 5),
    }.items():
        m = (((g - np.array(c)[:, None, None, None]) ** 2).sum(0) <= r * r).astype(np.uint8)
        mi = sitk.GetImageFromArray(m)
        mi.CopyInformation(img)
        masks[name] = mi
    ext = make_extractor(project_root / "config" / "radiomics" / "mri_default.yaml")
    ref = extract_per_roi(ext, img, masks)
    shared, problems = extract_shared(ext, img, masks)
    assert problems == {}
    for roi in masks:
        assert set(shared[roi]) == set(ref[roi])
        assert any(k.startswith("wavelet-HHH_glcm") for k in shared[roi])
        assert any(k.startswith("log-sigma-3-0-mm-3D_glszm") for k in shared[roi])
        for k, v in ref[roi].items():
            assert np.isclose(shared[roi][k], v, rtol=1e-12, atol=0, equal_nan=True), (roi, k)


def test_resampling_settings_fall_back_to_per_roi():
    ext = make_extractor_from_dict(
        {
            "imageType": {"Original": {}},
            "featureClass": {"firstorder": None},
            "setting": {"interpolator": "sitkLinear", "resampledPixelSpacing": [2, 2, 2]},
        }
    )
    arr = np.random.default_rng(0).normal(0, 1, (20, 20, 20))
    img = sitk.GetImageFromArray(arr)
    m = np.zeros(arr.shape, np.uint8)
    m[5:15, 5:15, 5:15] = 1
    mi = sitk.GetImageFromArray(m)
    mi.CopyInformation(img)
    shared, _ = extract_shared(ext, img, {"x": mi})
    ref = extract_per_roi(ext, img, {"x": mi})
    assert shared == ref


def test_run_radiomics_row_and_bad_inputs(tmp_path, project_root):
    sd = make_subject(tmp_path, maps=("adc",))
    adc = nib.load(str(sd / "prep" / "adc.nii.gz")).get_fdata()
    adc[0, 0, 0] = np.inf
    save_image(adc.astype(np.float32), sd / "prep" / "adc.nii.gz")
    save_image(np.zeros(SHAPE, np.uint8), sd / "seg" / "rois" / "necrosis.nii.gz")
    params = project_root / "config" / "radiomics" / "mri_fast.yaml"
    out = sd / "features" / "radiomics.tsv"
    df = run_radiomics(
        sd / "prep" / "manifest.json",
        roi_paths(sd),
        sd / "prep" / "brain_mask.nii.gz",
        out,
        out_perturbed=sd / "features" / "radiomics_perturbed.tsv",
        cfg={"radiomics_params": str(params)},
    )
    row = df.iloc[0]
    n_keys = len(feature_keys(params))
    n_shape = sum("_shape_" in k for k in feature_keys(params))
    # 6 sequences x 7 ROIs intensity features + 7 ROIs x shape, + ids, prov, qc_reason.
    feat_cols = [c for c in df.columns if c.startswith("radiomics__")]
    assert len(feat_cols) == 6 * 7 * (n_keys - n_shape) + 7 * n_shape
    assert row["radiomics__all__whole_tumor__original_shape_VoxelVolume"] > 0
    assert not np.isnan(row["radiomics__t2__whole_tumor__original_glcm_Contrast"])
    assert np.isnan(row["radiomics__adc__whole_tumor__original_firstorder_Mean"])  # inf voxel
    assert np.isnan(row["radiomics__rcbv__whole_tumor__original_firstorder_Mean"])  # missing
    assert np.isnan(row["radiomics__t2__necrosis__original_firstorder_Mean"])  # empty ROI
    for why in ("non-finite voxel(s) in adc", "rcbv not available", "ROI necrosis is empty"):
        assert why in row["qc_reason"]
    assert row["prov__params_sha256"] and row["prov__whole_tumor__mask_voxels"] > 0
    assert row["prov__mode"] == "shared_filters"
    long = pd.read_csv(sd / "features" / "radiomics_perturbed.tsv", sep="\t")
    assert set(long["perturbation"]) == {"original", "erode1", "dilate1"}
    vol = long[long["feature"] == "radiomics__all__whole_tumor__original_shape_VoxelVolume"]
    v = vol.set_index("perturbation")["value"]
    assert v["erode1"] < v["original"] < v["dilate1"]
    assert v["original"] == row["radiomics__all__whole_tumor__original_shape_VoxelVolume"]
