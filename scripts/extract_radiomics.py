"""Rule extract_radiomics: pyradiomics features (filters once per sequence) of one subject."""

from radiogenomics.features import run_radiomics
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    cfg = dict(sm.params.features) | {"radiomics_params": sm.input.params}
    run_radiomics(
        sm.input.manifest,
        rois,
        sm.input.brain_mask,
        sm.output.table,
        out_perturbed=sm.output.perturbed,
        cfg=cfg,
    )


run_subject_step(sm, "features", main)
