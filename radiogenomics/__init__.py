"""glioma-radiogenomics: the science behind the Snakemake workflow (intake to validation)."""

__version__ = "0.1.0"
