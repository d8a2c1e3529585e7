"""Rule skullstrip_brain: co-registered T1 (or T1ce) -> prep/brain_mask.nii.gz."""

from radiogenomics.imaging.common import set_threads
from radiogenomics.imaging.skullstrip import skullstrip_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    set_threads(sm.threads)
    cfg = sm.params.config
    skullstrip_subject(
        sm.input.manifest,
        sm.output.mask,
        method=cfg["method"],
        already_stripped=bool(sm.params.skull_stripped),
        input_sequences=tuple(cfg["input_sequences"]),
        mode=cfg["mode"],
        tta=cfg["tta"],
        device=cfg["device"],
        network_spacing_mm=cfg["network_spacing_mm"],
        volume_ml_range=tuple(cfg["brain_volume_ml_range"]),
    )


if __name__ == "__main__":
    run_subject_step(sm, "skullstrip_brain", main)
