"""Rule report_feature_families: feature counts per family, table and figure (Features)."""

from radiogenomics.report.build import build_feature_families
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_feature_families(sm.input.features, dict(sm.output.items()))
