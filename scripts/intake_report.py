"""Rule intake_report: which subjects have images, labels, both or neither, and why."""

from radiogenomics.intake.report import intake_report
from radiogenomics.io import write_tsv
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
write_tsv(
    intake_report(
        list(sm.input.manifests), dict(zip(sm.params.cohorts, sm.input.labels, strict=True))
    ),
    sm.output.report,
)
