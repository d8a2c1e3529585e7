"""Rule biopsy_model: subject-grouped CV of one sample-level marker model, refit, validation."""

from radiogenomics.biopsy.stage import run_biopsy_model_rule
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_biopsy_model_rule(
    sm.input.features,
    sm.wildcards.marker,
    sm.params.settings,
    int(sm.params.seed),
    {k: str(v) for k, v in sm.output.items()},
)
