"""Rule segment_tumor (imaging chain): tumour labels and ROIs, QC, and the habitat voxel sample.

QC and the voxel sample need only the labels and the imaging chain's outputs, so they share the
job instead of paying a Python start-up and a DAG node each per session.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radiogenomics.habitats.model import sample_subject
from radiogenomics.imaging.qc import qc_subject
from radiogenomics.io import read_json
from radiogenomics.paths import ROIS, entities_from_path, subject_seed
from radiogenomics.runner import Step, run_subject_steps
from radiogenomics.segmentation import segment_tumor, write_rois


def provided_labels_path(anat_manifest: str | None) -> Path | None:
    """The cohort's label image that intake copied next to its manifest, if any."""
    if not anat_manifest:
        return None
    labels_file = read_json(anat_manifest).get("labels_file")
    return Path(anat_manifest).parent / labels_file if labels_file else None


def segment_steps(
    inputs: Mapping[str, Any], out: Mapping[str, str], settings: Mapping[str, Any], threads: int
) -> list[Step]:
    """The three steps of `segment_tumor` for the session the outputs belong to.

    `settings`: `methods` and `label_conventions` (cohort -> value), `segmentation` (config
    section), `rings_mm`, `qc_ranges`, `habitats` (config section) and the run's `seed`.
    """
    ids = entities_from_path(out["labels"])
    cohort = ids[0]
    method = settings["methods"][cohort]
    hab = settings["habitats"]
    # Only `provided` cohorts declare the intake manifest as an input (it names the labels).
    anat = inputs.get("anat") or None

    def segment():
        segment_tumor(
            method,
            inputs["prep"],
            inputs["brain"],
            out["labels"],
            config=settings["segmentation"],
            label_convention=settings["label_conventions"][cohort],
            provided_labels=provided_labels_path(anat) if method == "provided" else None,
            anat_manifest=anat if method == "provided" else None,
            seed=subject_seed(settings["seed"], *ids),
            threads=threads,
            meta_path=out["meta"],
        )
        write_rois(out["labels"], inputs["brain"], {r: out[r] for r in ROIS}, settings["rings_mm"])

    def quality_control():
        qc_subject(
            inputs["prep"],
            inputs["coreg"],
            inputs["brain"],
            out["labels"],
            inputs["similarity"],
            out["overlay"],
            out["metrics"],
            ranges=dict(settings["qc_ranges"]),
        )

    def habitat_voxels():
        sample_subject(
            ids,
            {
                "manifest": inputs["prep"],
                "brain_mask": inputs["brain"],
                "roi": out[hab["roi"]],
                "whole_tumor": out["whole_tumor"],
            },
            out["voxel_sample"],
            maps=list(hab["maps"]),
            fallback_sequences=list(hab["fallback_sequences"]),
            max_voxels=int(hab["max_voxels_per_subject"]),
            min_roi_voxels=int(hab["min_roi_voxels"]),
            seed=int(settings["seed"]),
        )

    return [
        ("segment_tumor", segment),
        ("qc_subject", quality_control),
        ("habitats", habitat_voxels),
    ]


def run_segment_tumor(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, str],
    settings: Mapping[str, Any],
    log: str | None,
    threads: int = 1,
) -> None:
    """Rule segment_tumor: one session's labels, ROIs, QC and voxel sample."""
    steps = segment_steps(inputs, outputs, settings, threads)
    run_subject_steps(steps, list(outputs.values()), log, job="segment_tumor")
