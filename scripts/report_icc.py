"""Rule report_icc: histogram of feature ICCs under mask perturbation (Features)."""

from radiogenomics.report.build import build_icc
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_icc(sm.input.icc, dict(sm.output.items()))
