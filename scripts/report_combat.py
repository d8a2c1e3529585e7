"""Rule report_combat: PCA of the features before and after ComBat, coloured by site (Features)."""

from radiogenomics.report.build import build_combat
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_combat(sm.input.before, sm.input.after, sm.params.sites, dict(sm.output.items()))
