"""Rule cnn_crops: tumour-centred crops of every imaged session for one cnn strategy."""

from radiogenomics.cohort.cnn_crops import run_cnn_crops
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_cnn_crops(
    list(sm.params.sessions),
    sm.input.markers,
    sm.wildcards.marker,
    sm.wildcards.strategy,
    sm.output.crops,
    sm.output.failures,
)
