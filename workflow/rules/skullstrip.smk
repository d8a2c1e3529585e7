"""Skull-stripping stage (imaging chain): HD-BET on CPU, or non-zero voxels for stripped cohorts."""


rule skullstrip_brain:
    input:
        manifest=f"{SD}/prep/coreg/manifest.json",
    output:
        mask=f"{SD}/prep/brain_mask.nii.gz",
    log:
        "logs/skullstrip_brain/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/skullstrip_brain/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/hdbet.yaml"
    # One thread: the network gains little from a second one on CPU (33 s vs 38 s wall on the demo),
    # so two subjects side by side use a workstation's cores better.
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        config=config["preprocess"]["skullstrip"],
        # Only an explicit `true` skips HD-BET; "auto" (a truthy string) lets the image decide.
        skull_stripped=lambda wc: cohort_config(wc.cohort).get("skull_stripped") is True,
    script:
        "../../scripts/skullstrip_brain.py"
