"""Rule intake_report: which subjects have images, labels, both or neither, and why."""

from radiogenomics.intake.report import run_intake_report
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_intake_report(
    list(sm.input.manifests),
    dict(zip(sm.params.cohorts, sm.input.labels, strict=True)),
    sm.params.feature_tables,
    sm.params.labels_files,
    sm.output.report,
    sm.output.unmatched,
    sm.params.refused,
)
