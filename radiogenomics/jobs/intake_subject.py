"""Rule intake_subject (intake): one session's images -> canonical de-identified NIfTI, manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radiogenomics.intake.discover import DISCOVER
from radiogenomics.intake.session import intake_session
from radiogenomics.runner import run_subject_steps


def session_sources(cohort: Mapping[str, Any], row: Mapping[str, Any]) -> dict:
    """The subject-table row, with a demo cohort's sources looked up now: its images did not
    exist when the DAG was built."""
    row = dict(row)
    if cohort["demo"]:
        found = [
            r
            for r in DISCOVER[cohort["layout"]](cohort)
            if r["subject"] == row["subject"] and r["session"] == row["session"]
        ]
        row.update(found[0] if found else {})
    return row


def run_intake_subject(
    cohort: Mapping[str, Any],
    row: Mapping[str, Any],
    sequences: Mapping[str, Any],
    manifest: str,
    log: str | None,
) -> None:
    """Rule intake_subject: the first step of a session's chain (clears an earlier failure)."""

    def intake():
        intake_session(dict(cohort), session_sources(cohort, row), sequences, Path(manifest).parent)

    run_subject_steps([("intake", intake)], [manifest], log, job="intake_subject")
