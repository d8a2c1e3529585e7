"""Rule apply_habitat_model: habitat map, fractions and overlay of one subject/session."""

from radiogenomics.habitats.apply import apply_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    hab = sm.params.habitats
    apply_subject(
        (sm.wildcards.cohort, sm.wildcards.subject, sm.wildcards.session),
        {k: sm.input[k] for k in ("manifest", "roi", "whole_tumor", "brain_mask")},
        sm.input.model,
        {
            "map": sm.output.habitat_map,
            "fractions": sm.output.fractions,
            "overlay": sm.output.overlay,
        },
        roi_name=hab["roi"],
        maps=list(hab["maps"]),
        fallback_sequences=list(hab["fallback_sequences"]),
        min_roi_voxels=int(hab["min_roi_voxels"]),
        regularisation=hab["regularisation"],
        iterations=int(hab["regularisation_iterations"]),
        overlay_sequence=hab["overlay_sequence"],
    )


run_subject_step(sm, "habitats", main)
