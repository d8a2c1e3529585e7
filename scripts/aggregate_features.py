"""Rule aggregate_features: per-subject feature files + feature-table cohorts -> cohort tables."""

from radiogenomics.cohort.aggregate import run_aggregate
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_aggregate(
    sm.params.subjects,
    sm.params.families,
    sm.params.feature_tables,
    sm.params.label_tables,
    sm.output.features,
    sm.output.labels,
    sm.output.failures,
    sm.output.summary,
)
