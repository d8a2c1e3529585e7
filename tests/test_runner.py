"""Failure isolation of per-session jobs (radiogenomics.runner), run in-process."""

import errno
import gc
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.runner import is_environment_error, run_subject_steps


@pytest.fixture
def job(tmp_path):
    """A preprocess job's outputs (two files of one session) and its log."""
    sd = tmp_path / "results" / "demo_a" / "sub-A001" / "ses-01"
    outputs = [str(sd / "prep" / "manifest.json"), str(sd / "prep" / "brain_mask.nii.gz")]
    return SimpleNamespace(output=outputs, log=str(tmp_path / "job.log")), sd


def run(sm, steps, name="preprocess_subject"):
    run_subject_steps(steps, sm.output, sm.log, job=name)


def test_steps_run_in_order_and_job_objects_leave_the_collector(job):
    sm, _ = job
    ran = []
    gc.unfreeze()
    run(sm, [("a", lambda: ran.append("a")), ("b", lambda: ran.append("b"))])
    assert ran == ["a", "b"]
    assert gc.get_freeze_count() > 1000


def test_failing_step_is_recorded_and_later_steps_skipped(job):
    sm, sd = job
    ran = []

    def bad():
        raise SubjectError("brain mask volume 12 ml outside plausible range", file="t1.nii.gz")

    steps = [("bias_correct_n4", lambda: ran.append("n4")), ("skullstrip_brain", bad)]
    run(sm, [*steps, ("x", ran.clear)])
    assert ran == ["n4"]
    record = json.loads((sd / "qc" / "failure.json").read_text())
    assert record["stage"] == "skullstrip_brain" and record["job"] == "preprocess_subject"
    assert record["subject"] == "A001" and record["session"] == "01"
    assert "12 ml" in record["message"]
    # Every output exists as an empty placeholder, so downstream jobs see the marker and skip.
    assert all(
        (sd / "prep" / name).stat().st_size == 0 for name in ["manifest.json", "brain_mask.nii.gz"]
    )
    assert gc.get_freeze_count() > 0
    # A later job of the session writes placeholders only; a rerun of this job clears the marker.
    later = [str(sd / "seg" / "tumor_labels.json")]
    run(SimpleNamespace(output=later, log=sm.log), [("seg", ran.clear)], "segment_tumor")
    assert (sd / "seg" / "tumor_labels.json").stat().st_size == 0
    run(sm, [("ok", lambda: ran.append("rerun"))])
    assert ran == ["n4", "rerun"] and not (sd / "qc" / "failure.json").exists()


def test_a_rerun_removes_what_later_jobs_wrote_and_the_cohort_gates(job):
    """A rerun must never leave a later step's placeholder or result to outlive it: Snakemake does
    not rebuild a missing intermediate file while the files built from it exist."""
    sm, sd = job
    results = sd.parents[2]
    stale = [
        sd / "seg" / "tumor_labels.nii.gz",
        sd / "features" / "radiomics.tsv",
        sd / "habitats" / "habitat_fractions.tsv",
        sd / "qc" / "metrics.tsv",
        results / "cohort" / "features.tsv",
        results / "qc" / "failures.tsv",
    ]
    # The intake report is built from intake's outputs alone: a later job must leave it alone.
    kept = [
        sd / "anat" / "manifest.json",
        results / "cohort" / "labels.tsv",
        results / "qc" / "intake_report.tsv",
    ]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("old")
    run(sm, [("ok", lambda: None)])
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        MemoryError(),
        RuntimeError("itk::ERROR: ImageFileWriter: No space left on device"),
    ],
)
def test_environment_errors_fail_the_job_without_a_trace(job, exc):
    sm, sd = job

    def disk_full():
        (sd / "prep").mkdir(parents=True, exist_ok=True)
        (sd / "prep" / "manifest.json").write_text("{}")  # an earlier step's output
        raise exc

    with pytest.raises(type(exc)):
        run(sm, [("coregister_to_reference", disk_full)])
    # No failure marker and no placeholder: the same command redoes the job later.
    assert not (sd / "qc" / "failure.json").exists()
    assert not (sd / "prep" / "brain_mask.nii.gz").exists()


def test_data_errors_are_not_environment_errors():
    assert not is_environment_error(SubjectError("cannot read t1 image", file="t1.nii.gz"))
    assert not is_environment_error(ValueError("attempt to get argmax of an empty sequence"))
    assert not is_environment_error(FileNotFoundError(errno.ENOENT, "no such file"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as disk:
            raise SubjectError("cannot read t1 image", file="t1.nii.gz") from disk
    except SubjectError as wrapped:
        assert is_environment_error(wrapped)


def test_uncaught_error_of_a_job_lands_in_its_log(tmp_path):
    """A cohort-level script that raises leaves the traceback in its log file."""
    log = tmp_path / "job.log"
    code = (
        "from radiogenomics.runner import setup_logging\n"
        f"setup_logging({str(log)!r})\n"
        "raise ValueError('attempt to get argmax of an empty sequence')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0
    text = log.read_text()
    assert "Traceback" in text and "ValueError: attempt to get argmax" in text
