"""Rule derive_rois: tumour labels + brain mask -> seg/rois/{roi}.nii.gz."""

from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step
from radiogenomics.segmentation import write_rois

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    outputs = {roi: getattr(sm.output, roi) for roi in ROIS}
    write_rois(sm.input.labels, sm.input.brain, outputs, sm.params.rings_mm)


run_subject_step(sm, "derive_rois", main)
