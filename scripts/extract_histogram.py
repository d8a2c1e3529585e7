"""Rule extract_histogram: intensity-histogram features of one subject/session."""

from radiogenomics.features import run_histogram
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    run_histogram(sm.input.manifest, rois, sm.output.table, dict(sm.params.features))


run_subject_step(sm, "features", main)
