"""Rule biopsy_maps: the marker's probability map over the tumour of every imaged session."""

from radiogenomics.biopsy.stage import run_biopsy_maps
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_biopsy_maps(
    sm.input.model,
    list(sm.params.sessions),
    sm.wildcards.marker,
    sm.params.settings,
    sm.output.maps,
    sm.output.table,
    sm.output.overlays,
    int(sm.params.n_overlays),
)
