"""Rule extract_location: VASARI-like location/morphology of one subject/session."""

from radiogenomics.features import run_location
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    run_location(
        sm.input.manifest,
        rois,
        sm.input.brain_mask,
        sm.input.transform,
        sm.output.table,
        cfg=dict(sm.params.features),
    )


run_subject_step(sm, "features", main)
