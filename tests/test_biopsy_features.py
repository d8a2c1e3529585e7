"""Biopsy stage: sphere features (against numpy on the same voxels and the dense FFT form),
spheres outside the brain, batch failure isolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from biopsy_helpers import build_cohort
from scipy import ndimage

from radiogenomics.biopsy.features import (
    SphereParams,
    biopsy_features,
    dense_sphere_stats,
    feature_columns,
    load_session,
    sample_stats,
    sphere_kernel,
    sphere_voxels,
)
from radiogenomics.paths import subject_dir


def test_sphere_kernel_counts_anisotropic() -> None:
    k = sphere_kernel(np.array([1.0, 1.0, 1.0]), 1.0)
    assert k.shape == (3, 3, 3) and k.sum() == 7  # centre + 6 face neighbours
    k = sphere_kernel(np.array([1.0, 1.0, 2.0]), 2.0)
    assert k.shape == (5, 5, 3)
    # Voxel centres within 2 mm: |di|^2 + |dj|^2 + (2 dk)^2 <= 4.
    ii, jj, kk = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), np.arange(-1, 2), indexing="ij")
    assert k.sum() == int((ii**2 + jj**2 + 4 * kk**2 <= 4).sum()) == 15
    ball, n_full = sphere_voxels(np.array([0.0, 0.0, 0.0]), (10, 10, 10), np.ones(3), 1.0)
    assert n_full == 7 and len(ball) == 4  # half the ball lies off the grid


def test_sample_stats_match_numpy_and_dense_maps() -> None:
    rng = np.random.default_rng(1)
    shape = (30, 28, 26)
    spacing = np.array([1.0, 1.2, 2.0])
    img = rng.lognormal(0.5, 0.4, shape).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[3:27, 2:25, 2:24] = True
    params = SphereParams(radius_mm=4.0, min_fraction=0.1)
    centre = np.array([14.0, 5.0, 12.0])
    feats = sample_stats({"rcbv": img, "adc": None}, mask, centre, spacing, params)
    ball, _ = sphere_voxels(centre, shape, spacing, 4.0)
    vals = img[tuple(ball[mask[tuple(ball.T)]].T)].astype(np.float64)
    assert feats["n_voxels"] == len(vals)
    assert feats["rcbv__mean"] == pytest.approx(vals.mean(), rel=1e-12)
    assert feats["rcbv__std"] == pytest.approx(vals.std(), rel=1e-12)
    assert feats["rcbv__p50"] == pytest.approx(np.median(vals), rel=1e-12)
    assert feats["rcbv__p90"] == pytest.approx(np.percentile(vals, 90), rel=1e-12)
    assert not any(k.startswith("adc__") for k in feats)
    # The FFT form gives the same masked-sphere mean/std at every voxel centre.
    mean, std, n = dense_sphere_stats(img, mask, sphere_kernel(spacing, 4.0))
    for c in ([14, 5, 12], [3, 2, 2], [20, 20, 20]):
        f = sample_stats({"rcbv": img}, mask, np.array(c, float), spacing, params)
        assert mean[tuple(c)] == pytest.approx(f["rcbv__mean"], rel=1e-9)
        assert std[tuple(c)] == pytest.approx(f["rcbv__std"], rel=1e-6)
        assert n[tuple(c)] == f["n_voxels"]


def test_dense_stats_against_scipy_convolve() -> None:
    rng = np.random.default_rng(2)
    img = rng.normal(100, 10, (16, 15, 14))
    mask = rng.random(img.shape) > 0.3
    k = sphere_kernel(np.ones(3), 2.5)
    mean, std, n = dense_sphere_stats(img, mask, k)
    kf = k.astype(float)
    s1 = ndimage.convolve(np.where(mask, img, 0), kf, mode="constant")
    s2 = ndimage.convolve(np.where(mask, img**2, 0), kf, mode="constant")
    cnt = ndimage.convolve(mask.astype(float), kf, mode="constant")
    np.testing.assert_allclose(n, cnt)
    np.testing.assert_allclose(mean, s1 / cnt, rtol=1e-10)
    np.testing.assert_allclose(std, np.sqrt(s2 / cnt - (s1 / cnt) ** 2), rtol=1e-6, atol=1e-6)


def test_sphere_outside_brain_or_image_refused() -> None:
    shape = (20, 20, 20)
    img = np.ones(shape, np.float32)
    mask = np.zeros(shape, bool)
    mask[5:15, 5:15, 5:15] = True
    params = SphereParams(radius_mm=3.0)
    with pytest.raises(ValueError, match="inside the brain mask"):
        sample_stats({"t1": img}, mask, np.array([1.0, 1.0, 1.0]), np.ones(3), params)
    with pytest.raises(ValueError, match="outside the image"):
        sample_stats({"t1": img}, mask, np.array([25.0, 1.0, 1.0]), np.ones(3), params)


def test_batch_records_failures_and_goes_on(tmp_path: Path) -> None:
    c = build_cohort(tmp_path, n_subjects=3, n_amplified=2, seed=3)
    table = c.table.copy()
    bad = table.iloc[0].copy()
    bad["sample_id"], bad["x"], bad["y"], bad["z"] = "FAR", 500.0, 0.0, 0.0
    ghost = table.iloc[0].copy()
    ghost["subject"], ghost["sample_id"] = "GHOST", "G1"
    table.loc[len(table)] = bad
    table.loc[len(table)] = ghost
    feats, fails = biopsy_features(table, c.cohort, SphereParams(), tmp_path)
    assert len(feats) == len(c.table) and len(fails) == 2
    far = fails[fails["sample_id"] == "FAR"].iloc[0]
    assert far["subject"] == table.iloc[0]["subject"] and "outside the image" in far["message"]
    assert far["file"].endswith("brain_mask.nii.gz")
    ghost_row = fails[fails["subject"] == "GHOST"].iloc[0]
    assert "sub-GHOST" in ghost_row["file"] and "GHOST" in ghost_row["message"]
    assert set(feature_columns(feats)) == {
        f"{s}__{t}" for s in ("adc", "rcbv", "t1ce") for t in ("mean", "std")
    }
    # Sample points land on the tumour of their own session.
    first = feats.iloc[0]
    ses = load_session(subject_dir(c.cohort, first["subject"], "01", tmp_path))
    ijk = np.rint([first["prep_i"], first["prep_j"], first["prep_k"]]).astype(int)
    assert ses.tumour[tuple(ijk)]
