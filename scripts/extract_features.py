"""Rule extract_features: every feature family of one subject/session, and its habitat map.

Inputs are the preprocessing and segmentation jobs' manifests; the brain mask, atlas affine and
ROIs those jobs wrote are found by path (radiogenomics.paths).

Writes whichever of radiomics, lesion_wide, histogram, mismatch, location and perturbed the rule
lists as outputs (the config's `features.families` and `features.perturbation` decide), then the
habitat map, fractions and overlay from the population habitat model.
"""

from radiogenomics.features import (
    run_histogram,
    run_lesion_wide,
    run_location,
    run_mismatch,
    run_perturbed,
    run_radiomics,
)
from radiogenomics.habitats.apply import apply_subject
from radiogenomics.paths import prep_paths, roi_paths, session_dir_of
from radiogenomics.runner import run_subject_steps

sm = snakemake  # noqa: F821 - injected by Snakemake
out = dict(sm.output.items())
sd = session_dir_of(sm.input.segmentation)
rois = {roi: str(path) for roi, path in roi_paths(sd).items()}
prep = prep_paths(sd)
manifest, brain = sm.input.manifest, str(prep["brain_mask"])
cfg = dict(sm.params.features)


def radiomics():
    run_radiomics(
        manifest,
        rois,
        brain,
        out["radiomics"],
        out_perturbed=out.get("radiomics_perturbed"),
        cfg=cfg | {"radiomics_params": sm.input.params},
    )


def lesion_families():
    if "lesion_wide" in out:
        run_lesion_wide(manifest, rois, out["lesion_wide"], cfg)
    if "histogram" in out:
        run_histogram(manifest, rois, out["histogram"], cfg)
    if "mismatch" in out:
        run_mismatch(manifest, rois, brain, out["mismatch"], cfg)
    if "location" in out:
        # After SyN the inverse warp refines the affine's subject -> MNI mapping. The config says
        # whether it belongs to this run: a warp left from an earlier SyN run must not be used.
        warps = [prep["atlas_invwarp"]] if sm.params.atlas_syn else []
        transforms = [str(p) for p in [prep["atlas_affine"], *warps]]
        run_location(manifest, rois, brain, transforms, out["location"], cfg=cfg)
    if "perturbed" in out:
        radiomics_long = out.get("radiomics_perturbed")
        run_perturbed(
            manifest, rois, brain, out["perturbed"], radiomics_long=radiomics_long, cfg=cfg
        )


def habitat_map():
    hab = sm.params.habitats
    apply_subject(
        (sm.wildcards.cohort, sm.wildcards.subject, sm.wildcards.session),
        {
            "manifest": manifest,
            "brain_mask": brain,
            "roi": rois[hab["roi"]],
            "whole_tumor": rois["whole_tumor"],
        },
        sm.input.habitat_model,
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


if __name__ == "__main__":
    steps = [("features", radiomics)] if "radiomics" in out else []
    steps += [("features", lesion_families), ("habitats", habitat_map)]
    run_subject_steps(sm, steps)
