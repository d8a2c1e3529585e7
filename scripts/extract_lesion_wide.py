"""Rule extract_lesion_wide: lesion-wide map statistics of one subject/session."""

from radiogenomics.features import run_lesion_wide
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    run_lesion_wide(sm.input.manifest, rois, sm.output.table, dict(sm.params.features))


run_subject_step(sm, "features", main)
