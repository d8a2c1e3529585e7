"""Failure isolation for per-subject rule scripts: a bad subject fails alone and the run goes on."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from radiogenomics.errors import SubjectError
from radiogenomics.io import read_json, write_json
from radiogenomics.paths import entities_from_path, failure_marker, session_dir_of
from radiogenomics.process_tuning import exclude_from_collector

log = logging.getLogger("radiogenomics")


def setup_logging(log_path: str | Path | None) -> None:
    """Send package logging (and stray warnings) to the rule's log file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    # A job that dies on an uncaught error leaves its traceback in its log, not only on the console.
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type, exc, tb) -> None:
    logging.getLogger("radiogenomics").critical("job failed", exc_info=(exc_type, exc, tb))


def _placeholders(outputs: list[str]) -> None:
    for out in outputs:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            p.touch()


def record_failure(sd: Path, stage: str, exc: BaseException) -> dict:
    """Write the subject's failure marker (first failure wins) and return it."""
    marker = failure_marker(sd)
    if marker.exists() and marker.stat().st_size:
        return read_json(marker)
    cohort, subject, session = entities_from_path(sd / "x")
    record = {
        "cohort": cohort,
        "subject": subject,
        "session": session,
        "stage": getattr(exc, "stage", "") or stage,
        "file": getattr(exc, "file", ""),
        "message": exc.message if isinstance(exc, SubjectError) else f"{type(exc).__name__}: {exc}",
    }
    write_json(record, marker)
    return record


Step = tuple[str, Callable[[], None]]


def run_subject_steps(
    steps: list[Step], outputs: Sequence[str], log_path: str | None, *, first_step: bool = False
) -> None:
    """Run one job's steps in order under failure isolation, with one log for the job.

    The first failing step is recorded under its own stage name (e.g. `skullstrip_brain` inside
    `preprocess_subject`); the steps after it do not run, and every output of the job becomes a
    placeholder, so downstream jobs see the failure marker and skip. `first_step`: the job starts
    the subject's chain, so a failure marker left by an earlier run is removed first.
    """
    setup_logging(log_path)
    outputs = [str(o) for o in outputs]
    try:
        sd = session_dir_of(outputs[0]) if outputs else None
    except ValueError:
        sd = None
    exclude_from_collector()
    try:
        for i, (stage, func) in enumerate(steps):
            if not _run_step(sd, outputs, stage, func, first_step=first_step and i == 0):
                return
    finally:
        # The process ends with the job: skip the collector's last pass over every object.
        exclude_from_collector()


def _run_step(
    sd: Path | None, outputs: list[str], stage: str, func: Callable[[], None], *, first_step: bool
) -> bool:
    """One step; False when the subject has failed (now or earlier) and outputs are placeholders."""
    if sd is not None:
        marker = failure_marker(sd)
        if first_step and marker.exists():
            marker.unlink()
        elif marker.exists():
            log.warning(
                "subject already failed earlier (%s); writing placeholders for %s", marker, stage
            )
            _placeholders(outputs)
            return False
    try:
        func()
    except Exception as exc:  # noqa: BLE001 - isolate any failure to this subject
        if sd is None:
            raise
        if isinstance(exc, SubjectError):
            exc.cohort, exc.subject, exc.session = entities_from_path(sd / "x")
            exc.stage = exc.stage or stage
        log.error("subject failed at %s: %s", stage, exc)
        log.error("%s", traceback.format_exc())
        record_failure(sd, stage, exc)
        for out in outputs:
            p = Path(out)
            if p.exists() and p.is_file():
                p.unlink()
        _placeholders(outputs)
        return False
    return True
