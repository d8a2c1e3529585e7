"""Failure isolation for per-subject rule scripts: a bad subject fails alone and the run goes on."""

from __future__ import annotations

import errno
import logging
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from radiogenomics.errors import SubjectError
from radiogenomics.io import read_json, write_json
from radiogenomics.paths import (
    chain_position,
    entities_from_path,
    failure_marker,
    session_dir_of,
    stale_after,
)
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


def record_failure(sd: Path, stage: str, exc: BaseException, job: str = "") -> dict:
    """Write the subject's failure marker (first failure wins) and return it."""
    marker = failure_marker(sd)
    if marker.exists() and marker.stat().st_size:
        return read_json(marker)
    cohort, subject, session = entities_from_path(sd / "x")
    record = {
        "cohort": cohort,
        "subject": subject,
        "session": session,
        "job": job,
        "stage": getattr(exc, "stage", "") or stage,
        "file": getattr(exc, "file", ""),
        "message": exc.message if isinstance(exc, SubjectError) else f"{type(exc).__name__}: {exc}",
    }
    write_json(record, marker)
    return record


# Errors of the machine, not of the subject's data: the job fails (Snakemake retries it or stops)
# and leaves neither a failure marker nor placeholders, so the same command completes it later.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
)
ENVIRONMENT_TEXT = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def is_environment_error(exc: BaseException) -> bool:
    """Disk full, quota, read-only or I/O errors, out of memory, a killed worker pool: anywhere in
    the chain of causes (a SubjectError raised while reading a file on a full disk included)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError | BrokenProcessPool):
            return True
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return True
        if any(text in str(exc) for text in ENVIRONMENT_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


Step = tuple[str, Callable[[], None]]


def run_subject_steps(
    steps: list[Step], outputs: Sequence[str], log_path: str | None, *, job: str
) -> None:
    """Run one per-session job's steps in order under failure isolation, with one log for the job.

    `job` is the rule (a `radiogenomics.paths.SESSION_CHAIN` entry). When it starts, what later
    jobs of the session wrote is removed (it is stale now), as is a failure recorded by this job or
    a later one; a failure of an earlier job makes every output a placeholder instead. The first
    failing step is recorded under its own stage name (e.g. `skullstrip_brain` inside
    `preprocess_subject`); the steps after it do not run, and every output of the job becomes a
    placeholder, so downstream jobs see the failure marker and skip.
    """
    setup_logging(log_path)
    outputs = [str(o) for o in outputs]
    sd = session_dir_of(outputs[0])
    exclude_from_collector()
    try:
        if not start_session_job(sd, job, outputs):
            return
        for stage, func in steps:
            if not _run_step(sd, job, outputs, stage, func):
                return
    finally:
        # The process ends with the job: skip the collector's last pass over every object.
        exclude_from_collector()


def remove_path(path: Path) -> None:
    """Remove a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def start_session_job(sd: Path, job: str, outputs: list[str]) -> bool:
    """Clear what this job's rerun makes stale; False (outputs are placeholders) when an earlier
    job of the session has failed."""
    marker = failure_marker(sd)
    if marker.exists():
        # A marker without its job predates the field: as before, only intake clears it.
        failed_job = (read_json(marker) if marker.stat().st_size else {}).get("job")
        if chain_position(failed_job or "intake_subject") < chain_position(job):
            log.warning("subject already failed at %s (%s): placeholders only", failed_job, marker)
            _placeholders(outputs)
            return False
        marker.unlink()
    for path in stale_after(sd, job):
        remove_path(path)
    return True


def _run_step(sd: Path, job: str, outputs: list[str], stage: str, func: Callable[[], None]) -> bool:
    """One step; False when the subject has failed and the job's outputs are placeholders."""
    try:
        func()
    except Exception as exc:  # noqa: BLE001 - isolate any data failure to this subject
        if is_environment_error(exc):
            log.error("%s at %s: the machine's fault, not the subject's", type(exc).__name__, stage)
            raise
        if isinstance(exc, SubjectError):
            exc.cohort, exc.subject, exc.session = entities_from_path(sd / "x")
            exc.stage = exc.stage or stage
        log.error("subject failed at %s: %s", stage, exc)
        log.error("%s", traceback.format_exc())
        record_failure(sd, stage, exc, job)
        for out in outputs:
            p = Path(out)
            if p.exists() and p.is_file():
                p.unlink()
        _placeholders(outputs)
        return False
    return True
