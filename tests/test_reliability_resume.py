"""Reliability (all stages): a run killed mid-way restarts with the same command, ends identical.

A tiny run (two demo_a subjects up to results/qc/failures.tsv) is SIGKILLed, whole process group,
as soon as one subject's first feature file exists; the same command then completes it (after
`--unlock` if Snakemake's stale lock stops it). Every TSV, NIfTI and JSON of demo_a (per-subject
chain, its labels and label issues) must be byte-identical to the uninterrupted bad-input run,
which holds the same two subjects beside other cohorts (this also shows determinism across
processes); cohort-wide files (results/cohort, results/habitats, results/qc/failures.tsv) depend
on the cohort list and are compared only within this run. No temporary file may be left.
"""

from __future__ import annotations

import pytest
from helpers import reliability as rh

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """(uninterrupted run dir, resumed run dir, what the kill interrupted, exit code, seconds)."""
    base = tmp_path_factory.getbasetemp()
    run = rh.resume_run(base)
    reference = rh.bad_input_run(base)
    assert reference["rc"] == 0, rh.log_tail(reference["dir"])
    return reference["dir"], run["dir"], run, run["rc"], run["seconds"]


@slow
def test_kill_happened_mid_run(resumed):
    _, _, interrupted, _, _ = resumed
    assert not interrupted["ended_before_kill"], interrupted
    assert not interrupted["failures_at_kill"], interrupted
    assert interrupted["features_at_kill"], interrupted
    print(f"killed after {interrupted['killed_after_s']:.0f} s: {interrupted}")


@slow
def test_restart_needs_at_most_an_unlock(resumed):
    _, work, interrupted, _, _ = resumed
    # Either the same command resumed at once, or only the stale lock stopped it.
    assert interrupted["first_rerun_rc"] == 0 or interrupted["stale_lock"], rh.log_tail(work)
    print(f"stale lock after SIGKILL: {interrupted['stale_lock']}")


@slow
def test_same_command_completes_the_run(resumed):
    _, work, _, rc, seconds = resumed
    assert rc == 0, rh.log_tail(work)
    assert (work / rh.FAILURES).stat().st_size > 0
    print(f"interrupted + resumed run: {seconds:.0f} s")


@slow
def test_resumed_results_byte_identical_to_uninterrupted_run(resumed):
    clean, work, _, rc, _ = resumed
    assert rc == 0, rh.log_tail(work)
    ref, got = rh.result_files(clean), rh.result_files(work)
    # Enough to mean something: every subject's five feature tables and its NIfTI chain.
    for subject in rh.CLEAN_SUBJECTS:
        sd = f"results/demo_a/sub-{subject}/ses-01/"
        assert sum(k.startswith(sd + "features/") for k in ref) >= 5
        assert sum(k.startswith(sd) and k.endswith(".nii.gz") for k in ref) >= 10
    comparable = ("results/demo_a/", "results/qc/labels/demo_a_issues.tsv")
    diff = [k for k in rh.differing(ref, got) if k.startswith(comparable)]
    assert diff == []
    assert sum(k.startswith(comparable) for k in got) >= 60


@slow
def test_no_subject_failed_and_no_partial_writes(resumed):
    _, work, _, _, _ = resumed
    failures = (work / rh.FAILURES).read_text().splitlines()
    assert len(failures) == 1, failures  # header only
    assert rh.temp_leftovers(work) == []
