"""Rule marker_strategy: nested CV of one marker's strategy on the discovery rows."""

from pathlib import Path

from radiogenomics.cohort.markers import run_marker_strategy
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_marker_strategy(
    sm.input.features,
    sm.input.labels,
    sm.input.dropped,
    sm.input.markers,
    sm.wildcards.marker,
    sm.wildcards.strategy,
    sm.params.settings,
    Path(sm.output.cv_metrics).parent,
    sm.threads,
)
