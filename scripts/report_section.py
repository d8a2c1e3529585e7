"""Rule report_section: copy one stage's figures and tables into the folder the report globs."""

from radiogenomics.report.build import build_section
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_section(
    sm.params.root,
    sm.output.folder,
    list(sm.params.overlays),
    sm.params.max_overlays,
    sm.params.max_rows,
)
