"""Rules marker_strategy and marker_summary: nested CV of one strategy / summary with controls."""

from pathlib import Path

from radiogenomics.cohort.markers import run_marker_strategy, run_marker_summary
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
inputs = sm.input
common = (inputs.features, inputs.labels, inputs.dropped, inputs.markers, sm.wildcards.marker)
if sm.rule == "marker_strategy":
    run_marker_strategy(
        *common,
        sm.wildcards.strategy,
        sm.params.settings,
        Path(sm.output.cv_metrics).parent,
        sm.threads,
    )
else:
    run_marker_summary(
        *common, list(sm.input.metrics), sm.params.settings, sm.output.summary, sm.threads
    )
