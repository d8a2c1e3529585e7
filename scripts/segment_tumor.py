"""Rule segment_tumor: prep sequences, brain mask (+ provided labels) -> tumour labels, ROIs, QC,
and the habitat voxel sample the population habitat model is fitted on."""

from radiogenomics.jobs.segment_tumor import run_segment_tumor

sm = snakemake  # noqa: F821 - injected by Snakemake
if __name__ == "__main__":  # Snakemake runs this as __main__; spawned workers must not rerun it
    run_segment_tumor(
        dict(sm.input.items()), dict(sm.output.items()), sm.params.settings, sm.log[0], sm.threads
    )
