"""Rule segment_tumor: prep sequences, brain mask (+ provided labels) -> tumour labels, ROIs, QC.

Also seg/tumor_labels.json (the method and, for `automated`, the core method and ADC use) and the
per-session QC figure and metrics, which need the labels, and the bounded voxel sample of the
habitat ROI that the population habitat model is fitted on.
"""

from pathlib import Path

from radiogenomics.habitats.model import sample_subject
from radiogenomics.imaging.qc import qc_subject
from radiogenomics.io import read_json
from radiogenomics.paths import ROIS, subject_seed
from radiogenomics.runner import run_subject_steps
from radiogenomics.segmentation import segment_tumor, write_rois

sm = snakemake  # noqa: F821 - injected by Snakemake
wc = sm.wildcards
method = sm.params.methods[wc.cohort]


def segment():
    provided = anat = None
    if method == "provided":
        anat = sm.input.anat
        labels_file = read_json(anat).get("labels_file")
        provided = Path(anat).parent / labels_file if labels_file else None
    segment_tumor(
        method,
        sm.input.prep,
        sm.input.brain,
        sm.output.labels,
        config=sm.params.config,
        label_convention=sm.params.label_conventions[wc.cohort],
        provided_labels=provided,
        anat_manifest=anat,
        seed=subject_seed(sm.params.seed, wc.cohort, wc.subject, wc.session),
        threads=sm.threads,
        meta_path=sm.output.meta,
    )
    rois = {roi: getattr(sm.output, roi) for roi in ROIS}
    write_rois(sm.output.labels, sm.input.brain, rois, sm.params.rings_mm)


def quality_control():
    qc_subject(
        sm.input.prep,
        sm.input.coreg,
        sm.input.brain,
        sm.output.labels,
        sm.input.similarity,
        sm.output.overlay,
        sm.output.metrics,
        ranges=dict(sm.params.qc_ranges),
    )


def habitat_voxels():
    hab = sm.params.habitats
    sample_subject(
        (wc.cohort, wc.subject, wc.session),
        {
            "manifest": sm.input.prep,
            "brain_mask": sm.input.brain,
            "roi": getattr(sm.output, hab["roi"]),
            "whole_tumor": sm.output.whole_tumor,
        },
        sm.output.voxel_sample,
        maps=list(hab["maps"]),
        fallback_sequences=list(hab["fallback_sequences"]),
        max_voxels=int(hab["max_voxels_per_subject"]),
        min_roi_voxels=int(hab["min_roi_voxels"]),
        seed=int(sm.params.seed),
    )


if __name__ == "__main__":  # Snakemake runs this as __main__; spawned workers must not rerun it
    run_subject_steps(
        sm,
        [
            ("segment_tumor", segment),
            ("qc_subject", quality_control),
            ("habitats", habitat_voxels),
        ],
    )
