"""Imaging chain rule scripts: run each script as Snakemake would, with schema-default config."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.head_images import oblique_affine, synthetic_head, write_image
from snakemake.iocontainers import Namedlist
from snakemake.utils import validate

PROJECT = Path(__file__).resolve().parents[1]


class FakeSnakemake:
    """The attributes a rule script reads from the injected `snakemake` object."""

    def __init__(self, input, output, params, log, threads=1, wildcards=None):
        self.input = Namedlist(fromdict={k: str(v) for k, v in input.items()})
        self.wildcards = Namedlist(fromdict=wildcards or {})
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


def _prep_outputs(p: Path) -> dict[str, Path]:
    return {
        "maps_manifest": p.parent / "maps/manifest.json",
        "n4_manifest": p / "n4/manifest.json",
        "coreg_manifest": p / "coreg/manifest.json",
        "similarity": p / "coreg/similarity.tsv",
        "mask": p / "brain_mask.nii.gz",
        "affine": p / "to_template_affine.mat",
        "template": p / "template_in_subject.nii.gz",
        "wm": p / "template_wm_in_subject.nii.gz",
        "hemisphere": p / "hemisphere_in_subject.nii.gz",
        "manifest": p / "manifest.json",
    }


def _session(tmp_path: Path, name: str) -> Path:
    sd = tmp_path / "results" / "c" / f"sub-{name}" / "ses-1"
    (sd / "anat").mkdir(parents=True)
    aff = oblique_affine()
    write_image(synthetic_head(seed=1), aff, sd / "anat/t1ce.nii.gz")
    write_image(synthetic_head(seed=2, contrast=0.7), aff, sd / "anat/flair.nii.gz")
    (sd / "anat/manifest.json").write_text(json.dumps({
        "cohort": "c", "subject": name, "session": "1",
        "sequences": {"t1ce": "t1ce.nii.gz", "flair": "flair.nii.gz"}}))  # fmt: skip
    return sd


@pytest.fixture(scope="module")
def atlas_template(tmp_path_factory) -> dict[str, Path]:
    """What rule resample_atlas_template writes once per run."""
    from radiogenomics.imaging.atlas import write_template

    folder = tmp_path_factory.mktemp("atlas")
    files = {"template": folder / "mni152_t1_2mm.nii.gz", "template_wm": folder / "wm.nii.gz"}
    write_template(2, files["template"], files["template_wm"])
    return files


def _preprocess(sd: Path, cfg: dict, log: Path, template: dict[str, Path]) -> dict[str, Path]:
    out = _prep_outputs(sd / "prep")
    settings = {"preprocess": cfg, "maps": ["adc", "rcbv"], "seed": 7}
    cohort = {"skull_stripped": {"c": False}, "intensities": {"c": "auto"},
              "bias_corrected": {"c": False}}  # fmt: skip
    params = {"settings": settings | cohort}
    wildcards = {"cohort": "c", "subject": sd.parent.name[4:], "session": "1"}
    inputs = {"manifest": sd / "anat/manifest.json", **template}
    _run("preprocess_subject.py", FakeSnakemake(inputs, out, params, log, wildcards=wildcards))
    return out


def test_preprocess_job_runs_every_step(tmp_path, prep_config, atlas_template):
    sd = _session(tmp_path, "01")
    out = _preprocess(sd, prep_config, tmp_path / "logs/prep.log", atlas_template)
    assert not (sd / "qc/failure.json").exists(), (sd / "qc/failure.json").read_text()
    assert sorted(json.loads(out["manifest"].read_text())["sequences"]) == ["flair", "t1ce"]
    mask = nib.load(str(out["mask"]))
    assert np.allclose(mask.affine, nib.load(str(sd / "prep/t1ce.nii.gz")).affine)
    assert nib.load(str(out["template"])).shape == mask.shape
    # One log for the job, with every step in it (not overwritten step by step).
    log = (tmp_path / "logs/prep.log").read_text()
    for module in ("bias", "coregister", "skullstrip", "atlas"):
        assert f"radiogenomics.imaging.{module}:" in log, module


def test_failing_step_is_recorded_under_its_stage(tmp_path, prep_config, atlas_template):
    # A brain-volume range no head satisfies: skull stripping (the third step) fails.
    cfg = copy.deepcopy(prep_config)
    cfg["skullstrip"]["brain_volume_ml_range"] = [1, 2]
    sd = _session(tmp_path, "02")
    out = _preprocess(sd, cfg, tmp_path / "logs/prep.log", atlas_template)
    failure = json.loads((sd / "qc/failure.json").read_text())
    assert failure["stage"] == "skullstrip_brain", failure
    assert failure["subject"] == "02"
    # Every output of the job is a placeholder, the earlier steps' too; later steps never ran.
    assert all(p.exists() and p.stat().st_size == 0 for p in out.values())
    assert not (sd / "prep/t1ce.nii.gz").exists()
    log = (tmp_path / "logs/prep.log").read_text()
    assert (
        "radiogenomics.imaging.coregister:" in log and "subject failed at skullstrip_brain" in log
    )
    assert "radiogenomics.imaging.atlas:" not in log
