"""Rule sample_habitat_voxels: one session's normalised ROI voxels as a bounded sample (.npz)."""

from radiogenomics.habitats.model import sample_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    hab = sm.params.habitats
    sample_subject(
        (sm.wildcards.cohort, sm.wildcards.subject, sm.wildcards.session),
        dict(sm.input),
        sm.output.sample,
        maps=list(hab["maps"]),
        fallback_sequences=list(hab["fallback_sequences"]),
        max_voxels=int(hab["max_voxels_per_subject"]),
        min_roi_voxels=int(hab["min_roi_voxels"]),
        seed=int(sm.params.seed),
    )


run_subject_step(sm, "habitats", main)
