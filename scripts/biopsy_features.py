"""Rule biopsy_features: sphere features around every image-localised biopsy sample."""

from radiogenomics.biopsy.stage import run_biopsy_features
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_biopsy_features(
    dict(sm.params.tables),
    dict(sm.params.roles),
    list(sm.params.sessions),
    sm.params.settings,
    sm.output.features,
    sm.output.failures,
)
