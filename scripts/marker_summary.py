"""Rule marker_summary: every strategy of one marker, the primary's shuffled-label control and the
verdicts."""

from radiogenomics.cohort.markers import run_marker_summary
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_marker_summary(
    sm.input.features,
    sm.input.labels,
    sm.input.dropped,
    sm.input.markers,
    sm.wildcards.marker,
    list(sm.input.metrics),
    sm.params.settings,
    sm.output.summary,
    sm.threads,
    dict(sm.params.crops),
)
