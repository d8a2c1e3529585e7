"""Rules marker_strategy / marker_subtypes: one marker's strategy on the discovery rows (nested CV,
or the subtype association)."""

from radiogenomics.cohort.markers import StrategyOutputs, run_marker_strategy
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
crops = getattr(sm.input, "crops", None)
run_marker_strategy(
    sm.input.features,
    sm.input.labels,
    sm.input.dropped,
    sm.input.markers,
    sm.wildcards.marker,
    sm.wildcards.strategy,
    sm.params.settings,
    StrategyOutputs(**{k: str(v) for k, v in sm.output.items()}),
    sm.threads,
    str(crops) if crops else None,
)
