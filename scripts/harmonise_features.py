"""Rule harmonise_features: ComBat fitted on discovery rows, applied to all (display table)."""

from radiogenomics.cohort.harmonise import run_harmonise
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_harmonise(sm.input.features, sm.params.batch, sm.params.enabled, sm.output.harmonised)
