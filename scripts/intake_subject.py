"""Rule intake_subject: one session's images -> canonical, de-identified NIfTI + manifest."""

from radiogenomics.jobs.intake_subject import run_intake_subject

sm = snakemake  # noqa: F821 - injected by Snakemake
run_intake_subject(
    sm.params.cohorts[sm.wildcards.cohort],
    sm.params.row,
    sm.params.sequences,
    sm.output.manifest,
    sm.log[0],
)
