"""Rule report_marker_summary: every marker side by side with the review's figures."""

from radiogenomics.report.build import build_marker_summary
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_marker_summary(
    sm.params.markers_root,
    sm.params.validation_root,
    sm.input.review,
    dict(sm.output.items()),
)
