"""Reliability (all stages): environment faults and interrupted reruns after a fix.

- A subject fails on bad input; the input is fixed and the same command rerun, then interrupted
  (SIGTERM) while each of the session's jobs runs in turn; the same command once more must give
  exactly the results of an uninterrupted run, with no stale failure left in failures.tsv.
- The disk fills up during a subject's preprocessing (a small tmpfs): the run ends non-zero and
  leaves neither a failure marker nor placeholders, and after space is freed the same command
  completes the subject.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import reliability as rh

pytestmark = pytest.mark.slow
SESSION_JOBS = ("intake_subject", "preprocess_subject", "segment_tumor", "extract_features")
TARGETS = [rh.FAILURES, "results/cohort/features.tsv"]
SD = "results/fix/sub-R01/ses-01"


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory) -> dict[str, Path]:
    """One generated demo session's images (BIDS files of demo_a A001)."""
    from radiogenomics.demo import generate_subject

    src = tmp_path_factory.mktemp("rerun_sources")
    generate_subject(rh.DEMO, rh.SEED, "demo_a", "A001", src)
    session = src / "demo_a" / "sub-A001" / "ses-01"
    return {seq: session / rel for seq, rel in rh.BIDS.items()}


def cohort(work: Path, images: dict[str, Path], broken: bool) -> list[dict]:
    """A one-subject nifti-table cohort; `broken` gives it a corrupt T1c (fails at intake)."""
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    rows = []
    for seq, path in images.items():
        dst = inputs / f"R01_{seq}.nii.gz"
        rh.corrupt_nifti(path, dst) if broken and seq == "t1ce" else shutil.copyfile(path, dst)
        rows.append(("R01", seq, dst))
    table = rh.write_nifti_table(inputs, rows)
    return [
        {
            "name": "fix",
            "layout": "nifti-table",
            "table": str(table),
            "role": "discovery",
            "skull_stripped": False,
        }
    ]


def config(work: Path, images, broken: bool) -> dict:
    """The reliability runs' config with the lighter feature families (what is tested here is
    the chain's bookkeeping, not radiomics; this keeps five reruns to minutes)."""
    features = {"families": ["lesion_wide", "histogram"], "perturbation": {"enabled": False}}
    return rh.workflow_config(cohort(work, images, broken)) | {"features": features}


def run(work: Path, images, broken: bool) -> subprocess.CompletedProcess:
    return rh.run_workflow(work, config(work, images, broken), TARGETS)


def interrupted_run(work: Path, images, job: str, deadline_s: float = 900) -> bool:
    """The fixed input's run, SIGTERMed (process group) once `job` of the session has started;
    True if it was."""
    cfg = rh.write_config(work, config(work, images, broken=False))
    log = work / "logs" / job / "fix_R01_01.log"
    start = time.time()
    with open(work / "run.log", "ab") as out:
        proc = subprocess.Popen(
            rh.snakemake_command(work, cfg, TARGETS),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=rh.PROJECT,
            env=rh.run_env(),
            start_new_session=True,  # its own process group, as a terminal's
        )
        while proc.poll() is None and time.time() - start < deadline_s:
            if log.exists() and log.stat().st_mtime >= start:
                # The whole group, as a shutdown or a terminal closing does: the running job dies
                # too and Snakemake removes its outputs.
                os.killpg(proc.pid, signal.SIGTERM)
                break
            time.sleep(0.1)
        started = proc.poll() is None
        proc.wait(timeout=600)
    return started


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_session) -> dict[str, str]:
    """Results of the fixed input, uninterrupted."""
    work = tmp_path_factory.mktemp("rerun_reference")
    res = run(work, demo_session, broken=False)
    assert res.returncode == 0, rh.log_tail(work)
    return rh.result_files(work)


@pytest.mark.parametrize("job", SESSION_JOBS)
def test_interrupted_rerun_after_a_fix_leaves_nothing_stale(job, tmp_path, demo_session, reference):
    work = tmp_path / "run"
    assert run(work, demo_session, broken=True).returncode == 0, rh.log_tail(work)
    failures = pd.read_csv(work / rh.FAILURES, sep="\t", dtype=str)
    assert failures["subject"].tolist() == ["R01"] and failures["stage"][0] == "intake"

    interrupted = interrupted_run(work, demo_session, job)
    res = rh.rerun(work, rh.snakemake_command(work, work / "config.yaml", TARGETS), "same again")
    assert res.returncode == 0, rh.log_tail(work)
    assert interrupted or job == "intake_subject", f"{job} never started"  # intake takes ~1 s
    assert pd.read_csv(work / rh.FAILURES, sep="\t").empty
    assert not (work / SD / "qc" / "failure.json").exists()
    got = rh.result_files(work)
    assert rh.differing(reference, got, prefix=SD) == []
    assert rh.differing(reference, got, prefix="results/cohort/features.tsv") == []


@pytest.fixture
def small_disk(tmp_path):
    """A 30 MB tmpfs: intake fits, preprocessing does not. Needs root (mount)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_not_a_subject_failure(small_disk, demo_session):
    work = small_disk / "run"
    target = f"{SD}/prep/manifest.json"
    cfg = rh.write_config(work, config(work, demo_session, broken=False))
    cmd = rh.snakemake_command(work, cfg, [target])
    res = rh.rerun(work, cmd, "small disk")
    assert res.returncode != 0
    assert "No space left on device" in (work / "run.log").read_text()
    # Neither a failure marker nor placeholders: nothing says the subject is bad.
    assert not (work / SD / "qc" / "failure.json").exists()
    placeholders = [p for p in (work / SD).rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert placeholders == [], placeholders
    # Space freed: the same command completes the subject.
    subprocess.run(["mount", "-o", "remount,size=2g", str(small_disk)], check=True)
    res = rh.rerun(work, cmd, "space freed")
    assert res.returncode == 0, rh.log_tail(work)
    assert (work / target).stat().st_size > 0
    assert not (work / SD / "qc" / "failure.json").exists()
    os.sync()
