"""Rule report_qc: QC metrics of all subjects with outliers flagged, and the overlays shown."""

from radiogenomics.report.build import build_qc
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_qc(
    list(sm.input.metrics),
    list(sm.params.overlays),
    sm.params.outlier_z,
    sm.params.max_overlays,
    dict(sm.output.items()),
)
