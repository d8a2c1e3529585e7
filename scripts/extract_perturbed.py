"""Rule extract_perturbed: robustness table (original / erode1 / dilate1) of one subject/session."""

from radiogenomics.features import run_perturbed
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    radiomics_long = sm.input.get("radiomics_perturbed") or None
    run_perturbed(
        sm.input.manifest,
        rois,
        sm.input.brain_mask,
        sm.output.table,
        radiomics_long=radiomics_long,
        cfg=dict(sm.params.features),
    )


run_subject_step(sm, "features", main)
