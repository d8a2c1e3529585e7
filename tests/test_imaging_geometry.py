"""Imaging chain: geometry is exact through every preprocessing step (qform and sform kept)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers.head_images import oblique_affine, synthetic_head, write_image

from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import ants_affine, reference_grid, to_ants
from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
from radiogenomics.imaging.normalise import normalise_subject
from radiogenomics.imaging.reorient import to_ras
from radiogenomics.imaging.skullstrip import skullstrip_subject
from radiogenomics.io import save_nifti

GEOM_FIELDS = (
    "qform_code",
    "sform_code",
    "quatern_b",
    "quatern_c",
    "quatern_d",
    "qoffset_x",
    "qoffset_y",
    "qoffset_z",
    "srow_x",
    "srow_y",
    "srow_z",
    "pixdim",
)


def _geom(path):
    h = nib.load(str(path)).header
    return {k: np.asarray(h[k]).copy() for k in GEOM_FIELDS}


def _same_geom(a, b, fields=GEOM_FIELDS):
    return all(np.array_equal(a[k], b[k]) for k in fields)


def test_ants_roundtrip_is_exact_on_oblique_affine():
    aff = oblique_affine()
    img = nib.Nifti1Image(np.zeros((5, 6, 7), np.float32), aff)
    assert np.allclose(ants_affine(to_ants(img)), aff, atol=1e-6)


def test_to_ras_keeps_world_coordinates_and_both_forms():
    aff = np.diag([-2.0, 2.0, 3.0, 1.0])
    aff[:3, 3] = [50, -40, -30]
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    img = nib.Nifti1Image(data, aff)
    img.set_qform(aff, code=1)
    ras = to_ras(img)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    assert np.allclose(ras.get_qform(), ras.get_sform())
    # Voxel (1, 2, 3) of the original is at the same world point in the RAS image.
    world = aff @ [1, 2, 3, 1]
    ijk = np.rint(np.linalg.inv(ras.affine) @ world).astype(int)[:3]
    assert ras.get_fdata()[tuple(ijk)] == data[1, 2, 3]


def test_reference_grid_covers_field_of_view():
    aff = oblique_affine(spacing=(0.9, 0.9, 5.5))
    ref = nib.Nifti1Image(np.zeros((256, 224, 26), np.float32), aff)
    new, shape = reference_grid(ref, 2.0)
    assert shape == (116, 101, 72)
    # Outer corners of both grids coincide (to within one new voxel).
    corner_old = aff @ [-0.5, -0.5, -0.5, 1]
    corner_new = new @ [-0.5, -0.5, -0.5, 1]
    assert np.allclose(corner_old, corner_new, atol=1e-6)
    assert np.allclose(np.linalg.norm(new[:3, :3], axis=0), 2.0)


@pytest.fixture()
def tiny_subject(tmp_path):
    """A 3-sequence synthetic subject in an intake-style anat/ folder (oblique RAS affines)."""
    sd = tmp_path / "results" / "c" / "sub-01" / "ses-1"
    anat = sd / "anat"
    anat.mkdir(parents=True)
    aff = oblique_affine()
    write_image(synthetic_head(seed=1), aff, anat / "t1ce.nii.gz")
    write_image(synthetic_head(seed=2, contrast=0.7), aff, anat / "t2.nii.gz")
    # A map on a different grid (coarser, shifted): co-registration must still resample it.
    aff_map = aff.copy()
    aff_map[:3, :3] *= 1.0
    aff_map[:3, 3] += [1.0, -1.0, 0.5]
    write_image(synthetic_head(seed=3, contrast=1.3) * 5, aff_map, anat / "adc.nii.gz")
    manifest = {
        "cohort": "c",
        "subject": "01",
        "session": "1",
        "sequences": {s: f"{s}.nii.gz" for s in ("t1ce", "t2", "adc")},
        "missing": {"rcbv": "not acquired"},
    }
    (anat / "manifest.json").write_text(json.dumps(manifest))
    return sd


def test_affines_preserved_through_every_step(tiny_subject):
    sd = tiny_subject
    prep = sd / "prep"
    bias_correct_subject(
        sd / "anat/manifest.json", prep / "n4/manifest.json", shrink_factor=2, iterations=(20, 10)
    )
    for seq in ("t1ce", "t2", "adc"):
        assert _same_geom(_geom(sd / f"anat/{seq}.nii.gz"), _geom(prep / f"n4/{seq}.nii.gz"))
    # ADC is quantitative: copied, not N4-corrected.
    adc_in = nib.load(str(sd / "anat/adc.nii.gz")).get_fdata()
    assert np.allclose(nib.load(str(prep / "n4/adc.nii.gz")).get_fdata(), adc_in)

    table = coregister_subject(
        prep / "n4/manifest.json",
        prep / "coreg/manifest.json",
        prep / "coreg/similarity.tsv",
        reference="t1ce",
        resample_mm=3.0,
        settings=RigidSettings(
            iterations=(100, 50), shrink_factors=(2, 1), smoothing_sigmas=(1, 0)
        ),
    )
    assert set(table["sequence"]) == {"t1ce", "t2", "adc"}
    expected, shape = reference_grid(nib.load(str(prep / "n4/t1ce.nii.gz")), 3.0)
    ref_geom = _geom(prep / "coreg/t1ce.nii.gz")
    for seq in ("t1ce", "t2", "adc"):
        img = nib.load(str(prep / f"coreg/{seq}.nii.gz"))
        assert img.shape == shape
        assert np.allclose(img.get_sform(), expected, atol=1e-5)
        assert np.allclose(img.get_qform(), expected, atol=1e-4)
        assert _same_geom(ref_geom, _geom(prep / f"coreg/{seq}.nii.gz"))
    assert (prep / "xfm/t2_to_t1ce.mat").exists()
    manifest = json.loads((prep / "coreg/manifest.json").read_text())
    assert manifest["missing"] == {"rcbv": "not acquired"}

    skullstrip_subject(
        prep / "coreg/manifest.json",
        prep / "brain_mask.nii.gz",
        method="nonzero",
        input_sequences=("t1ce",),
        volume_ml_range=(1, 5000),
    )
    assert _same_geom(ref_geom, _geom(prep / "brain_mask.nii.gz"))

    grid = nib.load(str(prep / "coreg/t1ce.nii.gz"))
    wm = (grid.get_fdata() > 0).astype(np.float32)
    hemi = np.ones(grid.shape, np.uint8)
    hemi[grid.shape[0] // 2 :] = 2
    for name, arr in (("wm", wm), ("hemi", hemi)):
        save_nifti(nib.Nifti1Image(arr, grid.affine, grid.header), prep / f"{name}.nii.gz")
    normalise_subject(
        prep / "coreg/manifest.json",
        prep / "brain_mask.nii.gz",
        prep / "wm.nii.gz",
        prep / "hemi.nii.gz",
        prep / "manifest.json",
    )
    out = json.loads((prep / "manifest.json").read_text())
    assert sorted(out["sequences"]) == ["adc", "t1ce", "t2"]
    for seq in ("t1ce", "t2", "adc"):
        assert _same_geom(ref_geom, _geom(prep / f"{seq}.nii.gz"))
    t1ce = nib.load(str(prep / "t1ce.nii.gz")).get_fdata()
    brain = nib.load(str(prep / "brain_mask.nii.gz")).get_fdata() > 0
    assert abs(t1ce[brain].mean()) < 1e-3 and abs(t1ce[brain].std() - 1) < 1e-3


def test_n4_shrink_targets_a_physical_fit_spacing():
    from radiogenomics.imaging.bias import n4_shrink

    assert n4_shrink((99, 117, 93), (2.0, 2.0, 2.0)) == 6
    assert n4_shrink((197, 233, 185), (1.0, 1.0, 1.0)) == 12
    assert n4_shrink((99, 117, 93), (2.0, 2.0, 2.0), fit_spacing_mm=8.0) == 4
    # The finest axis decides; thin stacks cap it so the shrunk image keeps 4 slices.
    assert n4_shrink((256, 256, 24), (0.9, 0.9, 6.0)) == 6
    assert n4_shrink((197, 233, 185), (1.0, 1.0, 1.0), shrink_factor=3) == 3


def test_coregistration_levels_follow_physical_spacing():
    assert RigidSettings().shrink_for((2.0, 2.0, 2.0)) == (4, 2)
    assert RigidSettings().shrink_for((1.0, 1.0, 1.0)) == (8, 4)
    assert RigidSettings(shrink_factors=(3, 1)).shrink_for((1.0, 1.0, 1.0)) == (3, 1)
