"""Rule extract_lesion_features: the cheap feature families of one subject/session.

Writes whichever of lesion_wide, histogram, mismatch, location and perturbed the rule lists as
outputs (the config's `features.families` and `features.perturbation` decide).
"""

from radiogenomics.features import (
    run_histogram,
    run_lesion_wide,
    run_location,
    run_mismatch,
    run_perturbed,
)
from radiogenomics.paths import ROIS
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    rois = {r: sm.input[r] for r in ROIS}
    cfg = dict(sm.params.features)
    out = dict(sm.output.items())
    manifest, brain = sm.input.manifest, sm.input.brain_mask
    if "lesion_wide" in out:
        run_lesion_wide(manifest, rois, out["lesion_wide"], cfg)
    if "histogram" in out:
        run_histogram(manifest, rois, out["histogram"], cfg)
    if "mismatch" in out:
        run_mismatch(manifest, rois, brain, out["mismatch"], cfg)
    if "location" in out:
        run_location(manifest, rois, brain, sm.input.transform, out["location"], cfg=cfg)
    if "perturbed" in out:
        radiomics_long = sm.input.get("radiomics_perturbed") or None
        run_perturbed(
            manifest, rois, brain, out["perturbed"], radiomics_long=radiomics_long, cfg=cfg
        )


run_subject_step(sm, "features", main)
