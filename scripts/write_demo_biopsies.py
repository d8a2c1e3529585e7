"""Rule write_demo_biopsies: one demo cohort's biopsy table from its sessions' planted samples."""

import logging

from radiogenomics.demo.generate import write_demo_biopsies
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
n = write_demo_biopsies(
    sm.params.root, sm.wildcards.cohort, list(sm.params.subjects), sm.output.table
)
logging.getLogger(__name__).info("%s: %d biopsy samples", sm.wildcards.cohort, n)
