"""Rule extract_mismatch: measured T2-FLAIR mismatch sign of one subject/session."""

from radiogenomics.features import run_mismatch
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    run_mismatch(
        sm.input.manifest, rois, sm.input.brain_mask, sm.output.table, dict(sm.params.features)
    )


run_subject_step(sm, "features", main)
