"""Rule normalise_intensities: co-registered sequences -> final prep/{seq}.nii.gz + manifest."""

from radiogenomics.imaging.normalise import normalise_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    cfg = sm.params.config
    normalise_subject(
        sm.input.manifest,
        sm.input.mask,
        sm.input.wm,
        sm.input.hemisphere,
        sm.output.manifest,
        method=cfg["method"],
        maps=tuple(cfg["maps"]),
        relative_maps=tuple(cfg["relative_maps"]),
        wm_threshold=cfg["wm_probability_threshold"],
    )


if __name__ == "__main__":
    run_subject_step(sm, "normalise_intensities", main)
