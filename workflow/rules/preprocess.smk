"""Preprocessing stage (imaging chain): N4, co-registration, skull stripping, MNI152 atlas, normalisation."""

PREP = config["preprocess"]
# Quantitative maps: no N4, no z-score (physical or relative units).
PREP_MAPS = sorted(
    set(config["sequences"]["optional_maps"]) | set(PREP["normalisation"]["maps"])
)
ATLAS_SYN = PREP["atlas"]["transform"] == "syn"
# Later jobs read the brain mask and atlas transforms by path: one definition of where they live.
PREP_PATHS = prep_paths(SD)
ATLAS_MM = PREP["atlas"]["template_resolution_mm"]


# Once per run: nilearn resamples its 1 mm template on every load (1 s a session otherwise).
rule resample_atlas_template:
    output:
        t1=f"results/atlas/mni152_t1_{ATLAS_MM}mm.nii.gz",
        wm=f"results/atlas/mni152_wm_{ATLAS_MM}mm.nii.gz",
    log:
        "logs/resample_atlas_template.log",
    benchmark:
        "benchmarks/rules/resample_atlas_template.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        resolution_mm=ATLAS_MM,
    script:
        "../../scripts/resample_atlas_template.py"


# One job per session for the whole chain: each step needs the previous one, none is worth its
# own Python start-up (2-3 s of imports), and fewer jobs keep a 1,000-subject DAG fast.
rule preprocess_subject:
    input:
        manifest=f"{SD}/anat/manifest.json",
        template=rules.resample_atlas_template.output.t1,
        template_wm=rules.resample_atlas_template.output.wm,
    output:
        **(
            {
                "warp": str(PREP_PATHS["atlas_warp"]),
                "invwarp": str(PREP_PATHS["atlas_invwarp"]),
            }
            if ATLAS_SYN
            else {}
        ),
        n4_manifest=f"{SD}/prep/n4/manifest.json",
        coreg_manifest=f"{SD}/prep/coreg/manifest.json",
        similarity=f"{SD}/prep/coreg/similarity.tsv",
        mask=str(PREP_PATHS["brain_mask"]),
        affine=str(PREP_PATHS["atlas_affine"]),
        template=f"{SD}/prep/template_in_subject.nii.gz",
        wm=f"{SD}/prep/template_wm_in_subject.nii.gz",
        hemisphere=f"{SD}/prep/hemisphere_in_subject.nii.gz",
        manifest=f"{SD}/prep/manifest.json",
    log:
        "logs/preprocess_subject/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/preprocess_subject/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    # One thread: N4 and HD-BET gain 10-15 % from a second one and seed_ants pins ITK to one for
    # repeatable registrations, so two subjects side by side use a workstation's cores better.
    threads: 1
    resources:
        # HD-BET on CPU peaks at ~2.6 GB on a 1 mm head.
        mem_mb=4000,
        runtime=60 if ATLAS_SYN else 40,
    params:
        config=PREP,
        maps=PREP_MAPS,
        # Per-cohort values and the run seed as plain params, not per-job functions: a function
        # costs every job of a 1,000-subject DAG a call; the script picks by its wildcards.
        seed=config["seed"],
        # Only an explicit `true` skips HD-BET; "auto" (a truthy string) lets the image decide.
        skull_stripped={
            name: cohort.get("skull_stripped") is True
            for name, cohort in COHORTS.items()
        },
    script:
        "../../scripts/preprocess_subject.py"
