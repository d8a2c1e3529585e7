"""Imaging chain on one demo session (2 mm) against the generator's truth: motion and brain mask."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import LPS, dice, set_threads
from radiogenomics.imaging.coregister import coregister_subject
from radiogenomics.imaging.skullstrip import skullstrip_subject
from radiogenomics.io import save_nifti

SEED = 20241125


@pytest.mark.slow
def test_chain_recovers_demo_motion_and_brain(tmp_path):
    import ants

    from radiogenomics.demo.generate import simulate_session, subject_anatomy
    from radiogenomics.demo.plan import plan_demo, resolve_config

    set_threads(2)
    cfg = resolve_config({"size": "small", "resolution_mm": 2})
    row = plan_demo(cfg, SEED).iloc[0].to_dict()
    anat = subject_anatomy(row, cfg, SEED)
    images, _, truth = simulate_session(row, anat, SEED)
    sd = tmp_path / "results" / "demo" / "sub-1" / "ses-1"
    (sd / "anat").mkdir(parents=True)
    for seq, data in images.items():
        img = nib.Nifti1Image(np.asarray(data, np.float32), anat.affine)
        img.set_qform(anat.affine, code=1)
        save_nifti(img, sd / "anat" / f"{seq}.nii.gz")
    manifest = {"cohort": "demo", "subject": "1", "session": "1",
                "sequences": {s: f"{s}.nii.gz" for s in images}}  # fmt: skip
    (sd / "anat" / "manifest.json").write_text(json.dumps(manifest))
    prep = sd / "prep"
    bias_correct_subject(sd / "anat/manifest.json", prep / "n4/manifest.json")
    table = coregister_subject(prep / "n4/manifest.json", prep / "coreg/manifest.json",
                               prep / "coreg/similarity.tsv", resample_mm=2.0)  # fmt: skip
    moved = table[table["sequence"] != "t1ce"]
    assert (moved["mi_after"] > moved["mi_before"]).all()

    # Our transform maps reference (truth) world points to where that tissue is in the
    # sequence; the generator's matrix M does the same: compare over brain voxels.
    pts = np.argwhere(anat.brain_mask)[::50]
    world = (anat.affine @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
    lps = world @ LPS.T
    df = pd.DataFrame({"x": lps[:, 0], "y": lps[:, 1], "z": lps[:, 2]})
    for seq in moved["sequence"]:
        est = ants.apply_transforms_to_points(3, df, [str(prep / f"xfm/{seq}_to_t1ce.mat")])
        est = est[["x", "y", "z"]].to_numpy() @ LPS.T
        m = np.array(truth["sequences"][seq]["matrix"])
        true = (m @ np.c_[world, np.ones(len(world))].T).T[:, :3]
        assert np.linalg.norm(est - true, axis=1).mean() <= 1.0, seq

    info = skullstrip_subject(prep / "coreg/manifest.json", prep / "brain_mask.nii.gz")
    assert info["method"] == "hdbet"  # a whole head, not mistaken for a stripped brain
    mask = nib.load(str(prep / "brain_mask.nii.gz")).get_fdata() > 0
    assert dice(mask, anat.brain_mask) >= 0.95

    # Atlas (affine): subject -> MNI points against the generator's own MNI -> subject matrix.
    from radiogenomics.imaging.atlas import atlas_subject, subject_to_mni_points

    atlas_subject(
        prep / "coreg/manifest.json",
        prep / "brain_mask.nii.gz",
        prep / "to_template_affine.mat",
        prep / "template_in_subject.nii.gz",
        prep / "template_wm_in_subject.nii.gz",
        prep / "hemisphere_in_subject.nii.gz",
    )
    subject_pts = world[::20]
    true_mni = np.linalg.inv(anat.mni_to_subject) @ np.c_[subject_pts, np.ones(len(subject_pts))].T
    got = subject_to_mni_points(subject_pts, [prep / "to_template_affine.mat"])
    assert np.linalg.norm(got - true_mni.T[:, :3], axis=1).mean() <= 2.0
