"""Real-data tier (all stages): every example in config/examples/ end to end, workflow and report.

`pytest -m real` runs these (README command 2 runs them too). Each example is run as a user would,
from a run directory of its own with the README's commands, on the real data in ../shared/data:
UCSF-PDGM's precomputed radiomics and metadata (cohort stage only) and two TCGA-LGG patients with
their fusion segmentations (intake to features; too few patients for cohort statistics, which the
run must say instead of failing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from radiogenomics.demo.score import dice, truth_on_grid
from radiogenomics.labels import map_label_convention

pytestmark = [pytest.mark.real, pytest.mark.slow]
PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT_S = 2400


def example_config(name: str, shared_data: Path, **changes) -> dict:
    """An example config as a user would point it at the data (absolute paths here)."""
    text = (PROJECT / "config" / "examples" / f"{name}.yaml").read_text()
    config = yaml.safe_load(text.replace("../shared/data", str(shared_data)))
    for key, value in changes.items():
        config[key] = value
    return config


def snakemake(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """A README command line, run from the project against a run directory of its own."""
    cmd = [str(BIN / "snakemake"), "--snakefile", str(PROJECT / "Snakefile"),
           "--directory", str(run_dir), "--profile", str(PROJECT / "profiles" / "local"),
           "--cores", "2", "--configfile", str(run_dir / "config.yaml"), *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)


def run_example(run_dir: Path, config: dict) -> tuple[subprocess.CompletedProcess, ...]:
    """The workflow, then `--report`, as the README gives them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = snakemake(run_dir)
    report = (
        snakemake(run_dir, "--report", str(run_dir / "report.html")) if not run.returncode else None
    )
    return run, report


@pytest.fixture(scope="module")
def ucsf(tmp_path_factory, shared_data) -> Path:
    run_dir = tmp_path_factory.mktemp("ucsf_pdgm")
    run, report = run_example(run_dir, example_config("ucsf_pdgm", shared_data))
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert report.returncode == 0, (report.stdout + report.stderr)[-4000:]
    return run_dir


@pytest.fixture(scope="module")
def tcga(tmp_path_factory, shared_data) -> Path:
    run_dir = tmp_path_factory.mktemp("tcga_lgg")
    run, report = run_example(run_dir, example_config("tcga_lgg", shared_data))
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert report.returncode == 0, (report.stdout + report.stderr)[-4000:]
    return run_dir


def selected(summary: Path) -> pd.Series:
    table = pd.read_csv(summary, sep="\t")
    return table[table["selected"].astype(bool)].iloc[0]


def test_ucsf_idh_nested_cv_and_external_validation(ucsf):
    idh = selected(ucsf / "results/markers/idh/summary.tsv")
    assert idh["auc"] >= 0.90, idh.to_dict()
    val = pd.read_csv(ucsf / "results/validation/idh/ucsfval/metrics.tsv", sep="\t")
    chosen = val[val["strategy"] == idh["strategy"]]
    assert len(chosen) and (chosen["auc"] >= 0.88).all(), val.to_dict("records")


def test_ucsf_intake_report_knows_a_feature_table_has_no_images(ucsf):
    intake = pd.read_csv(ucsf / "results/qc/intake_report.tsv", sep="\t", dtype=str)
    per_subject = intake[intake["subject"].ne("") & intake["subject"].notna()]
    assert len(per_subject) == 501  # one row per feature-table subject, none "without images"
    assert not per_subject["status"].str.startswith("labels_without").any()
    failures = pd.read_csv(ucsf / "results/qc/failures.tsv", sep="\t")
    assert failures.empty, failures.head().to_dict("records")


def test_ucsf_report_shows_why_habitats_did_not_run(ucsf):
    page = (ucsf / "results/report/habitats/summary/centroids.html").read_text()
    assert "not_run" in page and "no discovery session has voxels" in page


def test_tcga_provided_labels_round_trip_exactly(tcga, shared_data):
    src = shared_data / "mri" / "tcga_lgg_brats_space"
    for case in ("TCGA-DU-7294", "TCGA-FG-6692"):
        sd = tcga / "results" / "tcga_lgg" / f"sub-{case.replace('-', '')}" / "ses-01"
        ours_img = nib.load(sd / "seg" / "tumor_labels.nii.gz")
        truth_img = nib.load(src / case / "segmentations" / "fusion_simple.nii.gz")
        truth = map_label_convention(np.asarray(truth_img.dataobj), "brats")
        truth = truth_on_grid(nib.Nifti1Image(truth, truth_img.affine), ours_img)
        ours = np.asarray(ours_img.dataobj)
        for region in ((1, 2, 3), (1, 3), (3,)):
            assert dice(np.isin(ours, region), np.isin(truth, region)) == 1.0, (case, region)


def test_tcga_stages_that_need_more_patients_say_so(tcga):
    for name in ("subtypes", "silhouette", "association"):
        table = pd.read_csv(tcga / f"results/unsupervised/{name}.tsv", sep="\t")
        assert (table["status"] == "not_run").all() and "discovery subject" in table["reason"][0]
    page = (tcga / "results/report/unsupervised/summary/silhouette.html").read_text()
    assert "not_run" in page
    labels = pd.read_csv(tcga / "results/qc/labels_without_images.tsv", sep="\t")
    intake = pd.read_csv(tcga / "results/qc/intake_report.tsv", sep="\t", dtype=str)
    summary = intake[intake["status"] == "labels_without_images"]
    assert len(summary) == 1 and int(summary["n_subjects"].iloc[0]) == len(labels) > 800
    assert pd.read_csv(tcga / "results/qc/failures.tsv", sep="\t").empty


def test_cohort_without_a_usable_subject_ends_the_run_non_zero(tmp_path, shared_data):
    config = example_config("tcga_lgg", shared_data)
    # A map neither session has: every subject fails intake.
    config["cohorts"][0]["required_sequences"] = ["t1ce", "flair", "adc"]
    run, _ = run_example(tmp_path, config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "cohort tcga_lgg: no usable subject (2 failed" in out, out[-4000:]
    assert "required sequence adc" in out
    # Every other job finished: the cohort stage wrote its tables, saying why they are empty.
    assert (tmp_path / "results/unsupervised/subtypes.tsv").exists()
