"""Rule external_validation: a discovery model applied unchanged to one validation cohort."""

from pathlib import Path

from radiogenomics.cohort.validation import run_validation
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_validation(
    sm.input.features,
    sm.input.labels,
    sm.input.summary,
    Path(sm.input.summary).parent,
    sm.wildcards.marker,
    sm.wildcards.cohort,
    sm.params.settings,
    sm.output.metrics,
    sm.output.predictions,
    sm.output.roc,
    dict(sm.params.crops),
)
