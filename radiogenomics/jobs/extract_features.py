"""Rule extract_features (features and habitats): every feature family of one session, and its
habitat map from the population habitat model.

The families read the same images and ROIs, so one job per session serves them all. Inputs are
the preprocessing and segmentation manifests; the brain mask, atlas transforms and ROIs those
jobs wrote are found by path (`radiogenomics.paths`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from radiogenomics.features import (
    run_histogram,
    run_lesion_wide,
    run_location,
    run_mismatch,
    run_peritumoral_heterogeneity,
    run_perturbed,
    run_radiomics,
)
from radiogenomics.habitats.apply import apply_subject
from radiogenomics.paths import entities_from_path, prep_paths, roi_paths, session_dir_of
from radiogenomics.runner import Step, run_subject_steps


def atlas_transforms(prep: Mapping[str, Any], syn: bool) -> list[str]:
    """Subject -> MNI transforms of this run: the affine, then SyN's inverse warp when the config
    runs SyN (a warp left by an earlier SyN run must never be combined with a new affine)."""
    warps = [prep["atlas_invwarp"]] if syn else []
    return [str(p) for p in [prep["atlas_affine"], *warps]]


def feature_steps(
    inputs: Mapping[str, Any], out: Mapping[str, str], settings: Mapping[str, Any]
) -> list[Step]:
    """The steps of `extract_features`: radiomics (when listed), the other families, habitats.

    Writes whichever families the outputs name (the config's `features.families` and
    `features.perturbation` decide). `settings`: `features` and `habitats` (config sections),
    `atlas_syn` (the atlas step ran SyN).
    """
    sd = session_dir_of(inputs["segmentation"])
    rois = {roi: str(path) for roi, path in roi_paths(sd).items()}
    prep = prep_paths(sd)
    manifest, brain = inputs["manifest"], str(prep["brain_mask"])
    cfg, hab = dict(settings["features"]), settings["habitats"]

    def radiomics():
        run_radiomics(
            manifest,
            rois,
            brain,
            out["radiomics"],
            out_perturbed=out.get("radiomics_perturbed"),
            cfg=cfg | {"radiomics_params": inputs["params"]},
        )

    def lesion_families():
        if "lesion_wide" in out:
            run_lesion_wide(manifest, rois, out["lesion_wide"], cfg)
        if "histogram" in out:
            run_histogram(manifest, rois, out["histogram"], cfg)
        if "mismatch" in out:
            run_mismatch(manifest, rois, brain, out["mismatch"], cfg)
        if "peritumoral_heterogeneity" in out:
            run_peritumoral_heterogeneity(manifest, rois, out["peritumoral_heterogeneity"], cfg)
        if "location" in out:
            transforms = atlas_transforms(prep, settings["atlas_syn"])
            run_location(manifest, rois, brain, transforms, out["location"], cfg=cfg)
        if "perturbed" in out:
            radiomics_long = out.get("radiomics_perturbed")
            run_perturbed(
                manifest, rois, brain, out["perturbed"], radiomics_long=radiomics_long, cfg=cfg
            )

    def habitat_map():
        apply_subject(
            entities_from_path(out["habitat_map"]),
            {
                "manifest": manifest,
                "brain_mask": brain,
                "roi": rois[hab["roi"]],
                "whole_tumor": rois["whole_tumor"],
            },
            inputs["habitat_model"],
            {
                "map": out["habitat_map"],
                "fractions": out["habitat_fractions"],
                "overlay": out["habitat_overlay"],
            },
            roi_name=hab["roi"],
            maps=list(hab["maps"]),
            fallback_sequences=list(hab["fallback_sequences"]),
            min_roi_voxels=int(hab["min_roi_voxels"]),
            regularisation=hab["regularisation"],
            iterations=int(hab["regularisation_iterations"]),
            overlay_sequence=hab["overlay_sequence"],
        )

    steps: list[Step] = [("features", radiomics)] if "radiomics" in out else []
    return [*steps, ("features", lesion_families), ("habitats", habitat_map)]


def run_extract_features(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, str],
    settings: Mapping[str, Any],
    log: str | None,
) -> None:
    """Rule extract_features: every family and the habitat map of one session."""
    run_subject_steps(
        feature_steps(inputs, outputs, settings),
        list(outputs.values()),
        log,
        job="extract_features",
    )
