"""Rule segment_tumor: prep sequences, brain mask (+ provided labels) -> tumour labels and ROIs.

Also seg/tumor_labels.json: the method and, for `automated`, the core method and ADC use.
"""

from pathlib import Path

from radiogenomics.io import read_json
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step
from radiogenomics.segmentation import segment_tumor, write_rois

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    provided = anat = None
    if sm.params.method == "provided":
        anat = sm.input.anat
        labels_file = read_json(anat).get("labels_file")
        provided = Path(anat).parent / labels_file if labels_file else None
    segment_tumor(
        sm.params.method,
        sm.input.prep,
        sm.input.brain,
        sm.output.labels,
        config=sm.params.config,
        label_convention=sm.params.label_convention,
        provided_labels=provided,
        anat_manifest=anat,
        seed=sm.params.seed,
        threads=sm.threads,
        meta_path=sm.output.meta,
    )
    rois = {roi: getattr(sm.output, roi) for roi in ROIS}
    write_rois(sm.output.labels, sm.input.brain, rois, sm.params.rings_mm)


if __name__ == "__main__":  # Snakemake runs this as __main__; spawned workers must not rerun it
    run_subject_step(sm, "segment_tumor", main)
