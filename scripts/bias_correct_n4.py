"""Rule bias_correct_n4: anat/{seq}.nii.gz -> prep/n4/{seq}.nii.gz + prep/n4/manifest.json."""

from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.common import set_threads
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    set_threads(sm.threads)
    cfg = sm.params.config
    bias_correct_subject(
        sm.input.manifest,
        sm.output.manifest,
        shrink_factor=cfg["n4_shrink_factor"],
        iterations=tuple(cfg["n4_iterations"]),
        fit_spacing_mm=cfg["n4_fit_spacing_mm"],
        maps=tuple(sm.params.maps),
    )


if __name__ == "__main__":
    run_subject_step(sm, "bias_correct_n4", main)
