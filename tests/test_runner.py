"""Failure isolation of per-subject rule scripts (radiogenomics.runner), run in-process."""

import gc
import json
from types import SimpleNamespace

import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.runner import run_subject_steps


@pytest.fixture
def job(tmp_path):
    """A job's outputs (two files of one session) and its log."""
    sd = tmp_path / "results" / "demo_a" / "sub-A001" / "ses-01"
    outputs = [str(sd / "prep" / "manifest.json"), str(sd / "prep" / "brain_mask.nii.gz")]
    return SimpleNamespace(output=outputs, log=str(tmp_path / "job.log")), sd


def test_steps_run_in_order_and_job_objects_leave_the_collector(job):
    sm, _ = job
    ran = []
    gc.unfreeze()
    steps = [("a", lambda: ran.append("a")), ("b", lambda: ran.append("b"))]
    run_subject_steps(steps, sm.output, sm.log)
    assert ran == ["a", "b"]
    assert gc.get_freeze_count() > 1000


def test_failing_step_is_recorded_and_later_steps_skipped(job):
    sm, sd = job
    ran = []

    def bad():
        raise SubjectError("brain mask volume 12 ml outside plausible range", file="t1.nii.gz")

    run_subject_steps(
        [
            ("bias_correct_n4", lambda: ran.append("n4")),
            ("skullstrip_brain", bad),
            ("x", ran.clear),
        ],
        sm.output,
        sm.log,
    )
    assert ran == ["n4"]
    record = json.loads((sd / "qc" / "failure.json").read_text())
    assert record["stage"] == "skullstrip_brain"
    assert record["subject"] == "A001" and record["session"] == "01"
    assert "12 ml" in record["message"]
    # Every output exists as an empty placeholder, so downstream jobs see the marker and skip.
    assert all(
        (sd / "prep" / name).stat().st_size == 0 for name in ["manifest.json", "brain_mask.nii.gz"]
    )
    assert gc.get_freeze_count() > 0


def test_uncaught_error_of_a_job_lands_in_its_log(tmp_path):
    """A cohort-level script that raises leaves the traceback in its log file."""
    import subprocess
    import sys

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
