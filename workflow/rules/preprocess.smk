"""Preprocessing stage (imaging chain): N4, co-registration, skull stripping, MNI152 atlas, normalisation."""

PREP = config["preprocess"]
ATLAS_SYN = PREP["atlas"]["transform"] == "syn"
# Later jobs read the brain mask and atlas transforms by path: one definition of where they live.
PREP_PATHS = prep_paths(SD)
ATLAS_MM = PREP["atlas"]["template_resolution_mm"]
# Per-cohort values and the run seed as plain params, not per-job functions (cheap large DAGs).
PREP_SETTINGS = {
    "preprocess": PREP,
    # Quantitative maps: no N4, no z-score (physical or relative units).
    "maps": sorted(set(config["sequences"]["optional_maps"]) | set(PREP["normalisation"]["maps"])),
    "seed": config["seed"],
    # Only an explicit `true` skips HD-BET; "auto" (a truthy string) lets the image decide.
    "skull_stripped": {n: c["skull_stripped"] is True for n, c in COHORTS.items()},
    # Declared input intensities (auto/raw/normalised) and bias correction, per cohort.
    "intensities": {n: c["intensities"] for n, c in COHORTS.items()},
    "bias_corrected": {n: c["bias_corrected"] for n, c in COHORTS.items()},
}


# Once per run, not in every session: nilearn resamples its 1 mm template on every load.
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


# One job per session for the whole chain (radiogenomics.jobs.preprocess_subject says why).
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
        maps_manifest=f"{SD}/maps/manifest.json",
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
    # One thread: seed_ants pins ITK to one for repeatable registrations, and two subjects side
    # by side use a workstation's cores better than one subject on two.
    threads: 1
    resources:
        # HD-BET on CPU on a 1 mm head (docs/performance.md).
        mem_mb=4000,
        runtime=60 if ATLAS_SYN else 40,
    params:
        settings=PREP_SETTINGS,
    script:
        "../../scripts/preprocess_subject.py"
