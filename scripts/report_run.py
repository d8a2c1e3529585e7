"""Rule report_run: runtime and memory per rule from benchmark files, and software versions."""

from radiogenomics.report.build import build_run
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
build_run(sm.params.benchmarks, dict(sm.output.items()))
