"""Rule report_ibsi: the project's IBSI conformance page as a report item (Features)."""

from radiogenomics.report.build import build_markdown
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_markdown(sm.input.md, "IBSI conformance", sm.output.html)
