"""Rule coregister_to_reference: prep/n4 -> prep/coreg/{seq}.nii.gz, prep/xfm/, similarity table."""

from radiogenomics.imaging.common import set_threads
from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    set_threads(sm.threads)
    cfg = sm.params.config
    coregister_subject(
        sm.input.manifest,
        sm.output.manifest,
        sm.output.similarity,
        reference=cfg["reference_sequence"],
        resample_mm=cfg["resample_mm"],
        settings=RigidSettings.from_config(cfg["coregistration"]),
        seed=sm.params.seed,
    )


if __name__ == "__main__":
    run_subject_step(sm, "coregister_to_reference", main)
