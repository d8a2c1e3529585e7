"""Rule report_cohorts: cohort overview, label availability and failures for the report."""

from radiogenomics.report.build import build_cohorts
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_cohorts(
    sm.input.intake,
    sm.input.failures,
    list(sm.input.label_issues),
    sm.params.sites,
    dict(sm.output.items()),
    max_rows=sm.params.max_rows,
)
