"""Rule check_usable_subjects: usable subjects per cohort; fails the run when a cohort has none."""

from radiogenomics.cohort.aggregate import check_usable_subjects
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
check_usable_subjects(sm.params.cohorts, sm.input.features, sm.input.failures, sm.output.usable)
