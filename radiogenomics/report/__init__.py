"""Report stage: figures and tables that `snakemake --report` collects into one HTML page."""
