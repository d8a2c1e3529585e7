"""Rule extract_features: every feature family of one subject/session, and its habitat map."""

from radiogenomics.jobs.extract_features import run_extract_features

sm = snakemake  # noqa: F821 - injected by Snakemake
if __name__ == "__main__":  # spawned workers re-import this file: they must not rerun the job
    run_extract_features(
        dict(sm.input.items()), dict(sm.output.items()), sm.params.settings, sm.log[0]
    )
