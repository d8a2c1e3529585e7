"""Rule cnn_saliency: Grad-CAM maps (NIfTI + overlays) of a cnn strategy's final model."""

from radiogenomics.deep.saliency import run_cnn_saliency
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake
setup_logging(sm.log[0])
run_cnn_saliency(
    sm.input.model,
    sm.input.predictions,
    sm.input.crops,
    sm.output.folder,
    sm.output.table,
    int(sm.params.n),
    sm.params.results,
)
