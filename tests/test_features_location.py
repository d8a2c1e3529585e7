"""Features stage: VASARI-like location/morphology on shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from radiogenomics.features.location import (
    LOBES,
    LocationParams,
    extract_location,
    lobe_labels,
    sphericity,
    ventricle_prior,
)

# A 2 mm grid whose world coordinates are MNI coordinates (identity mapping).
AFF = np.array([[2.0, 0, 0, -90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
SHAPE = (91, 109, 91)


def ball(centre_mm, radius_mm):
    ijk = np.round(np.linalg.solve(AFF[:3, :3], np.asarray(centre_mm) - AFF[:3, 3])).astype(int)
    rv = radius_mm / 2.0
    r = int(np.ceil(rv)) + 1
    m = np.zeros(SHAPE, dtype=bool)
    sl = tuple(slice(c - r, c + r + 1) for c in ijk)
    g = np.indices(m[sl].shape) - r
    m[sl] = (g**2).sum(0) <= rv**2
    return m


def _pyradiomics_sphericity(mask: np.ndarray, spacing) -> float:
    import SimpleITK as sitk
    from radiomics import shape

    img = sitk.GetImageFromArray(mask.transpose(2, 1, 0).astype(np.float32))
    img.SetSpacing(tuple(float(s) for s in spacing))
    msk = sitk.GetImageFromArray(mask.transpose(2, 1, 0).astype(np.uint8))
    msk.CopyInformation(img)
    sc = shape.RadiomicsShape(img, msk)
    return float(sc.getSphericityFeatureValue())


def test_sphericity_matches_pyradiomics_and_geometry():
    g = np.indices((30, 30, 30)) - 14.5
    b = (g**2).sum(0) <= 11.0**2
    # Voxelised ball: staircase surface keeps it below 1, pyradiomics' mesh agrees.
    assert sphericity(b, (1.0, 1.0, 1.0)) == pytest.approx(
        _pyradiomics_sphericity(b, (1, 1, 1)), rel=0.01
    )
    assert 0.88 < sphericity(b, (1.0, 1.0, 1.0)) < 1.0
    slab = np.zeros((30, 30, 30), bool)
    slab[5:25, 5:25, 12:16] = True
    s = sphericity(slab, (1.0, 2.0, 1.0))
    assert s == pytest.approx(_pyradiomics_sphericity(slab, (1.0, 2.0, 1.0)), rel=0.01)
    assert s < 0.7


def test_lobe_labels_of_textbook_points():
    pts = np.array([[40, 40, 20], [30, -60, 50], [55, -20, -20], [20, -95, 5], [-20, -70, -40]])
    assert [LOBES[i] for i in lobe_labels(pts)] == [
        "frontal",
        "parietal",
        "temporal",
        "occipital",
        "cerebellum",
    ]


def test_ventricle_prior_volume_is_plausible():
    vent, aff = ventricle_prior()
    ml = vent.sum() * abs(np.linalg.det(aff[:3, :3])) / 1000
    assert 8 < ml < 60  # lateral + third ventricles of MNI152: tens of ml


def test_location_features_known_answers():
    right_frontal = ball((35, 40, 20), 8)
    left_frontal = ball((-35, 40, 20), 6)
    whole = right_frontal | left_frontal
    core = ball((35, 40, 20), 4)
    masks = {
        "whole_tumor": whole,
        "tumor_core": core,
        "enhancing": core & ~ball((35, 40, 20), 2),
        "necrosis": ball((35, 40, 20), 2),
        "edema": whole & ~core,
    }
    brain = ball((0, -18, 10), 75)
    feats, reasons = extract_location(masks, brain, AFF, lambda p: p, LocationParams())
    f = {k.split("__")[-1] if "__whole_tumor__" in k else k: v for k, v in feats.items()}
    assert reasons == []
    assert f["n_components"] == 2 and f["multifocal"] == 1
    assert f["midline_crossing"] == 0  # two separate foci, not one lesion across the midline
    assert f["lobe_fraction_frontal"] == pytest.approx(1.0)
    assert f["right_fraction"] == pytest.approx(right_frontal.sum() / whole.sum(), abs=1e-9)
    assert f["ventricle_contact"] == 0
    assert feats["location__all__whole_tumor__volume_ml"] == pytest.approx(whole.sum() * 8 / 1000)
    assert feats["location__all__edema__fraction_of_whole"] == pytest.approx(
        (whole & ~core).sum() / whole.sum()
    )
    # Next to the right lateral ventricle body: contact.
    near_vent = ball((16, -5, 20), 6)
    masks2 = dict(masks, whole_tumor=near_vent)
    f2, _ = extract_location(masks2, brain, AFF, lambda p: p, LocationParams())
    assert f2["location__all__whole_tumor__ventricle_contact"] == 1
    assert f2["location__all__whole_tumor__midline_crossing"] == 0
    # One lesion through the corpus callosum region: crosses the midline.
    across = ball((0, 10, 30), 14)
    f3, _ = extract_location(
        dict(masks, whole_tumor=across), brain, AFF, lambda p: p, LocationParams()
    )
    assert f3["location__all__whole_tumor__midline_crossing"] == 1


def test_no_mni_mapping_gives_nan_and_reason():
    masks = {r: ball((35, 40, 20), 5) for r in ("whole_tumor", "tumor_core", "enhancing")}
    masks |= {"necrosis": np.zeros(SHAPE, bool), "edema": np.zeros(SHAPE, bool)}
    feats, reasons = extract_location(masks, None, AFF, None, LocationParams())
    assert np.isnan(feats["location__all__whole_tumor__centroid_mni_x"])
    assert not np.isnan(feats["location__all__whole_tumor__volume_ml"])
    assert any("MNI" in r for r in reasons) and any("brain mask" in r for r in reasons)
