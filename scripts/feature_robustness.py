"""Rule feature_robustness: ICC across mask perturbations -> ICC table and dropped features."""

from radiogenomics.cohort.robustness import run_robustness
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_robustness(
    list(sm.input.perturbed), sm.params.threshold, sm.params.kind, sm.output.icc, sm.output.dropped
)
