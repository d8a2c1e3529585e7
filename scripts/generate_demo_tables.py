"""Rule write_demo_tables: labels tables, planted truth, PHI list and truth README (no images)."""

import logging
from pathlib import Path

from radiogenomics.demo import write_demo_tables
from radiogenomics.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
paths = write_demo_tables(
    snakemake.params.demo,  # noqa: F821
    int(snakemake.params.seed),  # noqa: F821
    out_root=Path(snakemake.output.planted).parents[1],  # noqa: F821
)
logging.getLogger("radiogenomics.demo").info("wrote %s", ", ".join(map(str, paths.values())))
