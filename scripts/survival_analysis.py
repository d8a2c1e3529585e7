"""Rule survival_analysis: out-of-fold Cox risk, C-index, KM/log-rank, hazard ratios."""

from pathlib import Path

from radiogenomics.cohort.survival import run_survival
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_survival(
    sm.input.features,
    sm.input.labels,
    sm.input.dropped,
    sm.input.subtypes,
    sm.params.settings,
    Path(sm.output.metrics).parent,
)
