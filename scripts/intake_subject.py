"""Rule intake_subject: one session's images -> canonical, de-identified NIfTI + manifest."""

from pathlib import Path

from radiogenomics.intake.discover import DISCOVER
from radiogenomics.intake.session import intake_session
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    cohort = sm.params.cohorts[sm.wildcards.cohort]
    row = dict(sm.params.row)
    if cohort.get("demo"):
        # Demo inputs did not exist when the DAG was built: look them up now.
        found = [
            r
            for r in DISCOVER[cohort["layout"]](cohort)
            if r["subject"] == row["subject"] and r["session"] == row["session"]
        ]
        row.update(found[0] if found else {})
    intake_session(cohort, row, sm.params.sequences, Path(sm.output.manifest).parent)


run_subject_step(sm, "intake", main, first_step=True)
