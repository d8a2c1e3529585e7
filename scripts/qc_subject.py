"""Rule qc_subject: prep images, brain mask, tumour labels -> qc/overlay.png + qc/metrics.tsv."""

from radiogenomics.imaging.qc import qc_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    qc_subject(
        sm.input.prep,
        sm.input.coreg,
        sm.input.mask,
        sm.input.labels,
        sm.input.similarity,
        sm.output.overlay,
        sm.output.metrics,
        ranges=dict(sm.params.ranges),
    )


if __name__ == "__main__":
    run_subject_step(sm, "qc_subject", main)
