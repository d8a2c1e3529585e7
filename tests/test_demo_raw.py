"""Demo sessions that ship raw acquisitions: generated BIDS DSC/DWI -> intake -> ADC vs planted."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import yaml
from snakemake.utils import validate

from radiogenomics.demo import raw as demoraw
from radiogenomics.demo.generate import generate_subject
from radiogenomics.demo.plan import plan_demo
from radiogenomics.demo.score import map_agreement, score_computed_map
from radiogenomics.intake.discover import DISCOVER
from radiogenomics.intake.session import intake_session
from radiogenomics.physiology.compute import compute_session_maps

# Baselines too (not only follow-ups), so the generated subject's session 01 is a raw one.
DEMO = {
    "size": "small",
    "raw_acquisitions": {"discovery_fraction": 0.25, "discovery_sessions": "all"},
}


def test_raw_demo_session_intake_and_adc_match_planted_truth(tmp_path):
    cfg = yaml.safe_load(open("config/config.yaml"))
    validate(cfg, "workflow/schemas/config.schema.yaml")
    cohort = next(c for c in cfg["cohorts"] if c["name"] == "demo_a")
    cohort |= {"path": str(tmp_path / "demo_a")}
    plan = plan_demo(DEMO, cfg["seed"])
    raw_rows = plan[(plan.cohort == "demo_a") & plan.raw_acquisitions]
    assert 0 < len(raw_rows) < (plan.cohort == "demo_a").sum()  # a few sessions, not all
    default = plan_demo({"size": "small"}, cfg["seed"])
    # By default every validation session ships raw series, and of the discovery sessions only
    # follow-ups (half of them), so the baselines that train the models keep their maps.
    assert default[default.cohort == "demo_b"].raw_acquisitions.all()
    discovery = default[default.cohort == "demo_a"]
    assert not discovery[discovery.session == "01"].raw_acquisitions.any()
    assert discovery[discovery.session == "02"].raw_acquisitions.sum() == 1  # of 2 follow-ups
    full = plan_demo(None, cfg["seed"])
    follow_ups = full[(full.cohort == "demo_a") & (full.session == "02")]
    assert follow_ups.raw_acquisitions.sum() == round(len(follow_ups) / 2)  # 7 of 14
    # Every other planted value is the same whichever sessions ship raw series.
    off = plan_demo({"size": "small", "raw_acquisitions": {"enabled": False}}, cfg["seed"])
    pd.testing.assert_frame_equal(
        default.drop(columns="raw_acquisitions"), off.drop(columns="raw_acquisitions")
    )
    subject = raw_rows.subject.iloc[0]
    generate_subject(DEMO, cfg["seed"], "demo_a", subject, tmp_path)
    row = next(r for r in DISCOVER["bids"](cohort) if r["subject"] == subject) | {
        "cohort": "demo_a"
    }
    assert "adc" not in row["source"] and "rcbv" not in row["source"]  # raw instead of maps
    sd = tmp_path / "results" / f"sub-{subject}" / f"ses-{row['session']}"
    man = intake_session(cohort, row, cfg["sequences"], sd / "anat")
    assert man["acquisitions"]["dsc"]["volumes"] == 45
    assert man["acquisitions"]["dwi"]["b_values"] == [0, 500, 1000]
    out = compute_session_maps(sd / "anat/manifest.json", sd / "maps/manifest.json",
                               optional_maps=("adc",))  # fmt: skip
    assert out["map_sources"] == {"adc": "computed from dwi"}
    td = tmp_path / "truth" / "demo_a" / f"sub-{subject}" / f"ses-{row['session']}" / "maps"
    acq = json.loads((td / "acquisitions.json").read_text())
    shape, grid = tuple(acq["grid"]["shape"]), np.array(acq["grid"]["affine"])
    computed = nib.load(sd / "maps/adc.nii.gz")
    assert np.allclose(computed.affine, grid, atol=1e-3)
    planted_img = nib.load(td / "adc.nii.gz")
    motion = np.array(acq["dwi"]["motion_matrix"])
    truth = planted_img.get_fdata()
    planted = demoraw.sample_on_grid(truth, planted_img.affine, shape, grid, motion)
    head = (truth > 0).astype(np.float32)
    inside = demoraw.sample_on_grid(head, planted_img.affine, shape, grid, motion, psf=False) > 0.99
    adc = computed.get_fdata()
    inside &= adc != 0
    err = float(np.median(adc[inside]) / np.median(planted[inside]) - 1)
    assert abs(err) < 0.03, err  # measured +0.07 % (A001)


def test_map_agreement_scores_correlation_and_lesion_median_error():
    rng = np.random.default_rng(0)
    planted = rng.uniform(0.5, 3.0, (20, 20, 10)).astype(np.float32)
    brain = np.ones(planted.shape, bool)
    lesion = np.zeros(planted.shape, bool)
    lesion[5:10, 5:10, 3:6] = True
    same = map_agreement(planted, planted, brain, lesion)
    assert same["r_brain"] > 1 - 1e-9 and same["lesion_median_error"] == 0.0
    scaled = planted.copy()
    scaled[lesion] *= 1.1
    scaled[0, 0, 0] = np.nan  # unfitted voxels are left out, not counted
    out = map_agreement(scaled, planted, brain, lesion)
    assert abs(out["lesion_median_error"] - 0.1) < 1e-6
    assert out["n_brain"] == brain.sum() - 1 and 0.9 < out["r_brain"] < 1.0


def test_score_computed_map_references_relative_maps_to_planted_white_matter():
    rng = np.random.default_rng(1)
    planted = rng.uniform(0.5, 3.0, (20, 20, 10))
    planted[:10] = 1.0  # pure white matter: the planted reference of rCBV
    lesion = np.zeros(planted.shape, bool)
    lesion[12:16, 5:10, 3:6] = True
    planted[lesion] = 2.5
    truth = {"planted": planted, "brain": np.ones(planted.shape, bool), "lesion": lesion}
    # A map on another reference (x 3.2, as CBV over a head median would be) scores as rCBV ...
    relative = score_computed_map(3.2 * planted, truth, "rcbv")
    assert abs(relative["wm_reference"] - 3.2) < 1e-9
    assert abs(relative["lesion_median_error"]) < 1e-9 and relative["r_brain"] > 1 - 1e-9
    # ... while an absolute map (ADC) keeps its scale, so a scale error is a median error.
    absolute = score_computed_map(1.05 * planted, truth, "adc")
    assert absolute["wm_reference"] == 1.0
    assert abs(absolute["lesion_median_error"] - 0.05) < 1e-9
