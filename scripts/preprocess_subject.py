"""Rule preprocess_subject: anat/ -> N4, co-registration, brain mask, atlas, normalisation."""

from radiogenomics.jobs.preprocess_subject import run_preprocess_subject

sm = snakemake  # noqa: F821 - injected by Snakemake
if __name__ == "__main__":  # HD-BET's workers re-import this file: they must not rerun the job
    run_preprocess_subject(
        dict(sm.input.items()), dict(sm.output.items()), sm.params.settings, sm.log[0], sm.threads
    )
