"""Rule validate_labels: one cohort's labels table -> canonical labels + the list of problems."""

from radiogenomics.intake.report import validate_cohort_labels
from radiogenomics.io import write_tsv
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
labels, issues = validate_cohort_labels(
    sm.wildcards.cohort, sm.input[0] if sm.input else None, sm.params.spec, sm.params.subjects
)
write_tsv(labels, sm.output.labels)
write_tsv(issues, sm.output.issues)
