"""Rule generate_demo_subject: write one demo subject's inputs (all sessions) and truth."""

import logging
from pathlib import Path

from radiogenomics.demo import generate_subject
from radiogenomics.process_tuning import exclude_from_collector
from radiogenomics.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
result = generate_subject(
    snakemake.params.demo,  # noqa: F821
    int(snakemake.params.seed),  # noqa: F821
    snakemake.wildcards.cohort,  # noqa: F821
    snakemake.wildcards.subject,  # noqa: F821
    out_root=Path(snakemake.output.flag).parents[2],  # noqa: F821
)
logging.getLogger("radiogenomics.demo").info("wrote %d session(s)", len(result))
# One job per demo subject: skip the collector's pass at exit, as the per-session jobs do.
exclude_from_collector()
