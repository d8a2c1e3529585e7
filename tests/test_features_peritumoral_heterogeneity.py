"""PHI on a session (features stage): rings carried from the prep grid onto the DSC series' grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from radiogenomics.features import run_peritumoral_heterogeneity
from radiogenomics.imaging.coregister import _write_identity
from radiogenomics.io import save_nifti, write_json

COL = "peritumoral_heterogeneity__dsc__peritumoral__{}"


def _rings(shape=(40, 40, 20), mm=2.0):
    """Tumour ball in the middle of a prep grid, near ring 0-6 mm, far ring 6-12 mm."""
    aff = np.diag([mm, mm, mm, 1.0])
    aff[:3, 3] = -np.array(shape) * mm / 2
    idx = np.indices(shape).transpose(1, 2, 3, 0) * mm
    dist = np.linalg.norm(idx - np.array(shape) * mm / 2, axis=-1)
    near = (dist > 8) & (dist <= 14)
    far = (dist > 14) & (dist <= 20)
    return aff, dist <= 8, near, far


def _series(aff_prep, near, far, far_like_near: bool, seed=0):
    """DSC on a coarser grid (4 mm in-plane, 4 mm slices): curves by ring on the prep grid,
    then block-averaged, noise added. Far ring: the same bolus (homogeneous) or a delayed,
    weaker one (heterogeneous)."""
    rng = np.random.default_rng(seed)
    t = np.arange(40)
    bolus = lambda t0, depth: 1 - depth * np.exp(-0.5 * ((t - t0) / 2.5) ** 2)  # noqa: E731
    curves = np.ones(near.shape + (40,), np.float32) * bolus(20, 0.05)
    curves[near] = bolus(20, 0.35)
    curves[far] = bolus(20, 0.35) if far_like_near else bolus(24, 0.15)
    s = 1000 * curves.reshape(20, 2, 20, 2, 10, 2, 40).mean(axis=(1, 3, 5))
    s = s * rng.uniform(0.9, 1.1, s.shape[:3] + (1,)) + rng.normal(0, 3, s.shape)
    aff = aff_prep.copy()
    aff[:3, :3] *= 2
    aff[:3, 3] += 1.0  # block centres: half a prep voxel further
    return nib.Nifti1Image(s.astype(np.float32), aff)


def _session(root: Path, far_like_near: bool, *, computed: bool = True) -> tuple[Path, dict]:
    sd = root / "results" / "c" / "sub-01" / "ses-01"
    for d in ("anat", "maps", "prep/xfm", "seg/rois", "features"):
        (sd / d).mkdir(parents=True, exist_ok=True)
    aff, tumour, near, far = _rings()
    rois = {}
    masks = {"whole_tumor": tumour, "peritumoral_near": near, "peritumoral_far": far}
    for name, m in masks.items():
        save_nifti(nib.Nifti1Image(m.astype(np.uint8), aff), sd / "seg/rois" / f"{name}.nii.gz")
        rois[name] = str(sd / "seg/rois" / f"{name}.nii.gz")
    save_nifti(_series(aff, near, far, far_like_near), sd / "anat" / "dsc.nii.gz")
    write_json({"acquisitions": {"dsc": {"files": ["dsc.nii.gz"]}}}, sd / "anat/manifest.json")
    source = "computed from dsc" if computed else "provided"
    write_json({"map_sources": {"rcbv": source}}, sd / "maps/manifest.json")
    write_json({"baseline": [2, 12]}, sd / "maps/cbv.json")
    _write_identity(sd / "prep/xfm/rcbv_to_t1ce.mat")
    t1ce = nib.Nifti1Image(np.ones(tumour.shape, np.float32), aff)
    save_nifti(t1ce, sd / "prep" / "t1ce.nii.gz")
    write_json({"sequences": {"t1ce": "t1ce.nii.gz"}}, sd / "prep/manifest.json")
    return sd, rois


@pytest.mark.parametrize("far_like_near", [True, False])
def test_phi_separates_homogeneous_from_heterogeneous_rings(tmp_path, far_like_near) -> None:
    sd, rois = _session(tmp_path, far_like_near)
    out = sd / "features" / "peritumoral_heterogeneity.tsv"
    df = run_peritumoral_heterogeneity(sd / "prep/manifest.json", rois, out)
    row = pd.read_csv(out, sep="\t").iloc[0]
    assert row[COL.format("near_voxels")] > 50 and row[COL.format("far_voxels")] > 50
    homogeneity = row[COL.format("phi_homogeneity")]
    if far_like_near:
        assert homogeneity > 0.8, homogeneity
        assert row[COL.format("peak_drop_ratio")] == pytest.approx(1.0, abs=0.1)
    else:
        assert homogeneity < 0.05, homogeneity
        assert row[COL.format("peak_drop_ratio")] > 1.5
    assert df["qc_reason"].fillna("").iloc[0] == ""


def test_rings_follow_the_registration_onto_the_series_grid(tmp_path) -> None:
    """The near ring on the DSC grid equals the prep ring block-averaged (identity transform)."""
    from radiogenomics.features.peritumoral_heterogeneity import mask_on_series_grid

    sd, rois = _session(tmp_path, True)
    series = nib.load(sd / "anat" / "dsc.nii.gz")
    moved = mask_on_series_grid(rois["peritumoral_near"], series, sd / "prep/xfm/rcbv_to_t1ce.mat")
    _, _, near, _ = _rings()
    expected = near.reshape(20, 2, 20, 2, 10, 2).mean(axis=(1, 3, 5)) > 0.5
    agree = (moved == expected).mean()
    assert moved.shape == series.shape[:3] and agree > 0.97, agree
    assert ndimage.label(moved)[1] == 1


def test_without_series_or_with_provided_rcbv_phi_is_nan_with_a_reason(tmp_path) -> None:
    sd, rois = _session(tmp_path, True, computed=False)
    out = sd / "features" / "peritumoral_heterogeneity.tsv"
    df = run_peritumoral_heterogeneity(sd / "prep/manifest.json", rois, out)
    assert np.isnan(df[COL.format("phi_homogeneity")].iloc[0])
    assert "rCBV not computed from the DSC series" in df["qc_reason"].iloc[0]
    write_json({"acquisitions": {}}, sd / "anat/manifest.json")
    df = run_peritumoral_heterogeneity(sd / "prep/manifest.json", rois, out)
    assert "no raw DSC series" in df["qc_reason"].iloc[0]
