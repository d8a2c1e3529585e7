"""Rule unsupervised_subtypes: PCA + k-means subtypes on discovery rows, heatmap vs markers."""

from pathlib import Path

from radiogenomics.cohort.unsupervised import run_unsupervised
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_unsupervised(
    sm.input.features,
    sm.input.labels,
    sm.input.dropped,
    sm.params.settings,
    Path(sm.output.subtypes).parent,
)
