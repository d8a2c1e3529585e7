"""Imaging chain rule scripts: run each script as Snakemake would, with schema-default config."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from snakemake.iocontainers import Namedlist
from snakemake.utils import validate
from test_imaging_geometry import _head, _oblique_affine, _write

PROJECT = Path(__file__).resolve().parents[1]


class FakeSnakemake:
    """The attributes a rule script reads from the injected `snakemake` object."""

    def __init__(self, input, output, params, log, threads=1):
        self.input = Namedlist(fromdict={k: str(v) for k, v in input.items()})
        self.output = Namedlist(fromdict={k: str(v) for k, v in output.items()})
        self.params = Namedlist(fromdict=params)
        self.log = Namedlist(fromdict={"log": str(log)})
        self.threads = threads


def _run(script: str, sm: FakeSnakemake) -> None:
    runpy.run_path(str(PROJECT / "scripts" / script), init_globals={"snakemake": sm},
                   run_name="__main__")  # fmt: skip


@pytest.fixture()
def prep_config():
    cfg = {"resample_mm": 3.0}
    validate(cfg, str(PROJECT / "workflow/schemas/preprocess.schema.yaml"))
    cfg = copy.deepcopy(cfg)
    cfg["skullstrip"]["method"] = "nonzero"
    cfg["skullstrip"]["brain_volume_ml_range"] = [1, 5000]
    return cfg


def test_scripts_run_in_order_and_isolate_failures(tmp_path, prep_config):
    sd = tmp_path / "results" / "c" / "sub-01" / "ses-1"
    (sd / "anat").mkdir(parents=True)
    aff = _oblique_affine()
    _write(_head(seed=1), aff, sd / "anat/t1ce.nii.gz")
    _write(_head(seed=2, contrast=0.7), aff, sd / "anat/flair.nii.gz")
    (sd / "anat/manifest.json").write_text(json.dumps({
        "cohort": "c", "subject": "01", "session": "1",
        "sequences": {"t1ce": "t1ce.nii.gz", "flair": "flair.nii.gz"}}))  # fmt: skip
    p, logs = sd / "prep", tmp_path / "logs"
    cfg = prep_config
    _run("bias_correct_n4.py", FakeSnakemake(
        {"manifest": sd / "anat/manifest.json"}, {"manifest": p / "n4/manifest.json"},
        {"config": cfg, "maps": ["adc", "rcbv"]}, logs / "n4.log"))  # fmt: skip
    _run("coregister_to_reference.py", FakeSnakemake(
        {"manifest": p / "n4/manifest.json"},
        {"manifest": p / "coreg/manifest.json", "similarity": p / "coreg/similarity.tsv"},
        {"config": cfg, "seed": 7}, logs / "coreg.log"))  # fmt: skip
    _run("skullstrip_brain.py", FakeSnakemake(
        {"manifest": p / "coreg/manifest.json"}, {"mask": p / "brain_mask.nii.gz"},
        {"config": cfg["skullstrip"], "skull_stripped": False}, logs / "ss.log"))  # fmt: skip
    atlas_out = {"affine": p / "to_template_affine.mat",
                 "template": p / "template_in_subject.nii.gz",
                 "wm": p / "template_wm_in_subject.nii.gz",
                 "hemisphere": p / "hemisphere_in_subject.nii.gz"}  # fmt: skip
    _run("register_to_atlas.py", FakeSnakemake(
        {"manifest": p / "coreg/manifest.json", "mask": p / "brain_mask.nii.gz"}, atlas_out,
        {"config": cfg["atlas"], "seed": 7}, logs / "atlas.log"))  # fmt: skip
    _run("normalise_intensities.py", FakeSnakemake(
        {"manifest": p / "coreg/manifest.json", "mask": p / "brain_mask.nii.gz",
         "wm": atlas_out["wm"], "hemisphere": atlas_out["hemisphere"]},
        {"manifest": p / "manifest.json"}, {"config": cfg["normalisation"]},
        logs / "norm.log"))  # fmt: skip
    assert not (sd / "qc/failure.json").exists(), (sd / "qc/failure.json").read_text()
    assert sorted(json.loads((p / "manifest.json").read_text())["sequences"]) == ["flair", "t1ce"]
    mask = nib.load(str(p / "brain_mask.nii.gz"))
    assert np.allclose(mask.affine, nib.load(str(p / "t1ce.nii.gz")).affine)
    assert nib.load(str(atlas_out["template"])).shape == mask.shape

    # A failing step (missing tumour labels) records the failure and writes placeholders.
    qc_out = {"overlay": sd / "qc/overlay.png", "metrics": sd / "qc/metrics.tsv"}
    _run("qc_subject.py", FakeSnakemake(
        {"prep": p / "manifest.json", "coreg": p / "coreg/manifest.json",
         "similarity": p / "coreg/similarity.tsv", "mask": p / "brain_mask.nii.gz",
         "labels": sd / "seg/tumor_labels.nii.gz"},
        qc_out, {"ranges": cfg["qc"]}, logs / "qc.log"))  # fmt: skip
    failure = json.loads((sd / "qc/failure.json").read_text())
    assert failure["stage"] == "qc_subject" and "tumour labels not found" in failure["message"]
    assert qc_out["metrics"].exists() and qc_out["metrics"].stat().st_size == 0
