"""Rule who_cns5: the WHO CNS5 integrated type of every subject, and counts per cohort."""

from radiogenomics.cohort.who_cns5 import run_who_cns5
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_who_cns5(sm.input.features, sm.input.labels, sm.output.types, sm.output.counts)
