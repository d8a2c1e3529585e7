"""Errors shared by all stages: expected bad input that fails one subject, not the run."""

from __future__ import annotations


class SubjectError(Exception):
    """Bad input for one subject/session; the message names the stage and file."""

    def __init__(
        self,
        message: str,
        *,
        stage: str = "",
        file: str | None = None,
        cohort: str = "",
        subject: str = "",
        session: str = "",
    ) -> None:
        self.message = message
        self.stage = stage
        self.file = str(file) if file is not None else ""
        self.cohort = cohort
        self.subject = subject
        self.session = session
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line naming who, where and what."""
        who = "/".join(x for x in (self.cohort, self.subject, self.session) if x)
        parts = [
            p
            for p in (self.stage and f"[{self.stage}]", who, self.file and f"file {self.file}")
            if p
        ]
        return (" ".join(parts) + ": " if parts else "") + self.message


class ConfigError(ValueError):
    """Configuration or sheet problem found before any job runs."""
