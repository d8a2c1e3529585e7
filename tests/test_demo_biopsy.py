"""Demo generator (foundation): planted intratumoural EGFR amplification and drawn biopsies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiogenomics.biopsy.table import validate_biopsy_table
from radiogenomics.demo import plan_demo
from radiogenomics.demo.biopsy import (
    MARKER,
    TRUTH_COLUMNS,
    EgfrPlant,
    apply_egfr_effect,
    draw_biopsies,
    egfr_field,
    plant_egfr_biopsies,
)
from radiogenomics.demo.generate import subject_anatomy
from radiogenomics.demo.sequences import tumour_maps
from radiogenomics.demo.tumour import build_tumour

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _ball(shape=(40, 40, 40), radius_vox=12.0) -> np.ndarray:
    c = (np.array(shape) - 1) / 2
    return np.linalg.norm(np.indices(shape).T - c, axis=-1).T <= radius_vox


def test_field_fraction_range_and_outside() -> None:
    region = _ball()
    field, fraction = egfr_field(region, AFFINE, np.random.default_rng(0), amplified=True)
    assert EgfrPlant().fraction_low <= fraction <= EgfrPlant().fraction_high
    # Exactly the planned share of the region is amplified (quantile threshold).
    assert (field[region] >= 0.5).mean() == pytest.approx(fraction, abs=1.5 / region.sum())
    assert np.all(field[~region] == 0) and field.min() >= 0 and field.max() <= 1
    # Smooth: neighbouring voxels differ little compared with the 0-1 range.
    assert np.abs(np.diff(field, axis=0))[region[1:] & region[:-1]].mean() < 0.1
    flat, f0 = egfr_field(region, AFFINE, np.random.default_rng(0), amplified=False)
    assert f0 == 0.0 and not flat.any()


def test_effect_scales_rcbv_up_adc_down_and_is_pure() -> None:
    region = _ball()
    field, _ = egfr_field(region, AFFINE, np.random.default_rng(1), amplified=True)
    maps = {"rcbv": np.full(region.shape, 2.0, np.float32),
            "adc": np.full(region.shape, 900.0, np.float32),
            "t2": np.ones(region.shape, np.float32)}  # fmt: skip
    out = apply_egfr_effect(maps, field)
    np.testing.assert_allclose(out["rcbv"], 2.0 * np.exp(0.8 * field), rtol=1e-6)
    np.testing.assert_allclose(out["adc"], 900.0 * np.exp(-0.15 * field), rtol=1e-6)
    np.testing.assert_array_equal(out["t2"], maps["t2"])
    assert np.all(maps["rcbv"] == 2.0) and out["rcbv"] is not maps["rcbv"]


def test_biopsies_inside_labelled_by_field_and_valid_table() -> None:
    region = _ball()
    counts, both = [], 0
    tables = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        field, _ = egfr_field(region, AFFINE, rng, amplified=True)
        t = draw_biopsies(field, region, AFFINE, rng, subject=f"P{seed}")
        counts.append(len(t))
        ijk = np.rint(t[["x", "y", "z"]].to_numpy() / 2.0).astype(int)
        assert region[tuple(ijk.T)].all()
        labels = np.where(t["field_value"] >= 0.5, "amplified", "not_amplified")
        assert (t[MARKER] == labels).all()
        pts = t[["x", "y", "z"]].to_numpy()
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)[np.triu_indices(len(t), 1)]
        assert d.min() >= EgfrPlant().min_distance_mm
        both += t[MARKER].nunique() == 2
        tables.append(t)
    assert min(counts) == 2 and max(counts) == 5
    assert both >= 25  # alternating pools: nearly every amplified subject has both classes
    table = pd.concat(tables, ignore_index=True).drop(columns=list(TRUTH_COLUMNS))
    typed, issues = validate_biopsy_table(table.astype(str).replace({"nan": ""}))
    assert issues == [] and len(typed) == len(table)
    # Same generator state, same samples.
    f, _ = egfr_field(region, AFFINE, np.random.default_rng(3), amplified=True)
    a = draw_biopsies(f, region, AFFINE, np.random.default_rng(9), subject="X")
    b = draw_biopsies(f, region, AFFINE, np.random.default_rng(9), subject="X")
    pd.testing.assert_frame_equal(a, b)


def test_plant_on_a_demo_tumour() -> None:
    """The generator's own tumour and maps: planted in the core, rCBV raised where amplified."""
    cfg = {"size": "small"}
    plan = plan_demo(cfg, 42)
    first = plan[plan["session"] == "01"]
    row = first[first["egfr_amplification"] == "amplified"].iloc[0].to_dict()
    anat = subject_anatomy(row, cfg, 42)
    rng = np.random.default_rng(5)
    tum = build_tumour(row, anat, rng)
    maps = tumour_maps(row, tum, rng)
    p = plant_egfr_biopsies(tum.labels, maps, anat.affine, rng, True, row["subject"])
    core = np.isin(tum.labels, (1, 3))
    assert np.all(p.field[~core] == 0) and (p.field[core] >= 0.5).mean() == pytest.approx(
        p.fraction, abs=1e-3
    )
    ratio = p.maps["rcbv"][core] / np.where(maps["rcbv"][core] > 0, maps["rcbv"][core], 1)
    np.testing.assert_allclose(ratio, np.exp(0.8 * p.field[core]), rtol=1e-5)
    assert 2 <= len(p.samples) <= 5
    ijk = np.rint(
        np.linalg.solve(anat.affine, np.c_[p.samples[["x", "y", "z"]], np.ones(len(p.samples))].T)
    )[:3].astype(int)
    assert core[tuple(ijk)].all()


def test_map_scoring_resamples_through_world_and_skips_unamplified(tmp_path) -> None:
    """`biopsy_map_correlations`: r over the planted viable tumour, the map on another grid."""
    import nibabel as nib

    from radiogenomics.demo.score import biopsy_map_correlations
    from radiogenomics.demo.tumour import HYPERVASCULAR, NONVIABLE
    from radiogenomics.io import write_tsv

    region = _ball()
    field, _ = egfr_field(region, AFFINE, np.random.default_rng(4), amplified=True)
    habitat = np.where(region, HYPERVASCULAR, 0).astype(np.uint8)
    habitat[:20] = np.where(region[:20], NONVIABLE, 0)  # necrotic half: outside the field's support
    labels = np.where(region, 1, 0).astype(np.uint8)
    truth, rows = tmp_path / "truth", []
    for subject, amplified in (("P1", True), ("P2", False)):
        td = truth / "demo_a" / f"sub-{subject}" / "ses-01"
        td.mkdir(parents=True)
        planted = field if amplified else np.zeros_like(field)
        for name, arr in (("egfr_field", planted), ("habitat_map", habitat),
                          ("tumor_labels", labels)):  # fmt: skip
            nib.save(nib.Nifti1Image(arr, AFFINE), td / f"{name}.nii.gz")
        # The map on a grid shifted by 5 voxels (world unchanged): 1 - field = perfectly wrong.
        shifted = AFFINE.copy()
        shifted[:3, 3] -= 10.0
        moved = np.zeros((50, 50, 50), np.float32)
        moved[5:45, 5:45, 5:45] = 1.0 - planted
        path = tmp_path / f"{subject}.nii.gz"
        nib.save(nib.Nifti1Image(moved, shifted), path)
        # maps.tsv names the map relative to the run directory (the parent of results/).
        rows.append({"cohort": "demo_a", "subject": subject, "session": "01", "status": "ok",
                     "map": path.name})  # fmt: skip
    out = tmp_path / "results" / "biopsy" / MARKER
    out.mkdir(parents=True)
    write_tsv(pd.DataFrame(rows), out / "maps.tsv")
    scores = biopsy_map_correlations(tmp_path / "results", truth, MARKER)
    viable = region & (habitat == HYPERVASCULAR)
    assert scores["subject"].tolist() == ["P1"] and scores["n_voxels"].iloc[0] == viable.sum()
    assert scores["r"].iloc[0] == pytest.approx(-1.0, abs=1e-5)
