"""Grad-CAM saliency: the planted blob lights up; NIfTI placed in world space; PNG written."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.deep.crops import crop_affine
from radiogenomics.deep.saliency import cam_on_reference, grad_cam, saliency_rows, write_saliency
from radiogenomics.deep.synthetic import planted_crops
from radiogenomics.deep.train import CNNClassifier


@pytest.fixture(scope="module")
def fitted():
    X, y = planted_crops(n=40, channels=2, size=24, effect=1.5, seed=1)
    return CNNClassifier(epochs=40, seed=11).fit(X, y), X, y


def blob_mask(x: np.ndarray) -> np.ndarray:
    """Voxels of the smoothed channel-1 blob (label-independent) above half its peak."""
    from scipy import ndimage

    s = ndimage.gaussian_filter(x[1], 2.0)
    return s > 0.5 * s.max()


def test_grad_cam_highlights_the_planted_blob(fitted):
    est, X, y = fitted
    ratios = []
    for i in np.flatnonzero(y == 1)[:6]:
        cam = grad_cam(est, X[i])
        assert cam.shape == X.shape[2:] and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
        inside = blob_mask(X[i])
        ratios.append(cam[inside].mean() / max(cam[~inside].mean(), 1e-6))
    assert np.median(ratios) > 1.5, ratios


def test_saliency_files_in_world_space(fitted, tmp_path):
    est, X, _ = fitted
    centre = np.array([10.0, -20.0, 15.0])
    aff = crop_affine(centre, 3.0, 24)
    ref_aff = np.array([[2.0, 0, 0, -60], [0, 2.0, 0, -80], [0, 0, 2.0, -50], [0, 0, 0, 1]])
    ref = tmp_path / "t1ce.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((60, 60, 50), np.float32), ref_aff), str(ref))
    paths = write_saliency(est, X[0], aff, tmp_path / "sal", "A001_01", reference=ref,
                           channels=("t1ce", "roi:whole_tumor"))  # fmt: skip
    crop_img = nib.load(paths["crop_nifti"])
    assert np.allclose(crop_img.affine, aff)
    cam = np.asarray(crop_img.dataobj)
    target = int(est.predict_proba(X[:1])[0, 1] >= 0.5)
    assert np.allclose(cam, grad_cam(est, X[0], target=target), atol=1e-6) and cam.max() == 1
    on_ref = nib.load(paths["nifti"])
    assert np.allclose(on_ref.affine, ref_aff) and on_ref.shape == (60, 60, 50)
    # The peak lands at the same world point in both grids (within a reference voxel).
    pk = np.array(np.unravel_index(np.argmax(cam), cam.shape), float)
    w_crop = aff[:3, :3] @ pk + aff[:3, 3]
    data = np.asarray(on_ref.dataobj)
    pr = np.array(np.unravel_index(np.argmax(data), data.shape), float)
    w_ref = ref_aff[:3, :3] @ pr + ref_aff[:3, 3]
    assert np.abs(w_crop - w_ref).max() <= 3.0
    assert data[0, 0, 0] == 0  # outside the crop
    png = (tmp_path / "sal" / "A001_01.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 5000
    # Identity placement: a map sampled on its own grid comes back unchanged.
    assert np.allclose(cam_on_reference(cam, aff, crop_img), cam, atol=1e-5)


def test_saliency_rows_pick_confident_correct_sessions():
    ids = pd.DataFrame({"cohort": "c", "subject": list("ABCDEF"), "session": "01"})
    rows = saliency_rows(ids, [1, 1, 0, 0, 1, 0], [0.9, 0.6, 0.1, 0.4, 0.95, 0.3], n=4)
    assert rows["subject"].tolist() == ["E", "A", "C", "F"]
