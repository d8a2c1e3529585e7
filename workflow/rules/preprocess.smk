"""Preprocessing stage (imaging chain): N4, co-registration to the reference, MNI152 atlas, normalisation."""

from radiogenomics.paths import subject_seed

PREP = config["preprocess"]
# Quantitative maps: no N4, no z-score (physical or relative units).
PREP_MAPS = sorted(
    set(config["sequences"]["optional_maps"]) | set(PREP["normalisation"]["maps"])
)
ATLAS_SYN = PREP["atlas"]["transform"] == "syn"


rule bias_correct_n4:
    input:
        manifest=f"{SD}/anat/manifest.json",
    output:
        manifest=f"{SD}/prep/n4/manifest.json",
    log:
        "logs/bias_correct_n4/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/bias_correct_n4/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    # One thread: N4 gains little from a second one (17 s vs 20 s wall on the demo), so two
    # subjects side by side use a workstation's cores better.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        config=PREP,
        maps=PREP_MAPS,
    script:
        "../../scripts/bias_correct_n4.py"


rule coregister_to_reference:
    input:
        manifest=f"{SD}/prep/n4/manifest.json",
    output:
        manifest=f"{SD}/prep/coreg/manifest.json",
        similarity=f"{SD}/prep/coreg/similarity.tsv",
    log:
        "logs/coregister_to_reference/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/coregister_to_reference/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    # One thread: seed_ants pins ITK to one thread so registrations are repeatable.
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        config=PREP,
        seed=lambda wc: subject_seed(config["seed"], wc.cohort, wc.subject, wc.session),
    script:
        "../../scripts/coregister_to_reference.py"


rule register_to_atlas:
    input:
        manifest=f"{SD}/prep/coreg/manifest.json",
        mask=f"{SD}/prep/brain_mask.nii.gz",
    output:
        **(
            {
                "warp": f"{SD}/prep/to_template_warp.nii.gz",
                "invwarp": f"{SD}/prep/to_template_invwarp.nii.gz",
            }
            if ATLAS_SYN
            else {}
        ),
        affine=f"{SD}/prep/to_template_affine.mat",
        template=f"{SD}/prep/template_in_subject.nii.gz",
        wm=f"{SD}/prep/template_wm_in_subject.nii.gz",
        hemisphere=f"{SD}/prep/hemisphere_in_subject.nii.gz",
    log:
        "logs/register_to_atlas/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/register_to_atlas/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    # One thread: seed_ants pins ITK to one thread so registrations are repeatable.
    threads: 1
    resources:
        mem_mb=3000,
        runtime=40 if ATLAS_SYN else 15,
    params:
        config=PREP["atlas"],
        seed=lambda wc: subject_seed(config["seed"], wc.cohort, wc.subject, wc.session),
    script:
        "../../scripts/register_to_atlas.py"


rule normalise_intensities:
    input:
        manifest=f"{SD}/prep/coreg/manifest.json",
        mask=f"{SD}/prep/brain_mask.nii.gz",
        wm=f"{SD}/prep/template_wm_in_subject.nii.gz",
        hemisphere=f"{SD}/prep/hemisphere_in_subject.nii.gz",
    output:
        manifest=f"{SD}/prep/manifest.json",
    log:
        "logs/normalise_intensities/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/normalise_intensities/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config={**PREP["normalisation"], "maps": PREP_MAPS},
    script:
        "../../scripts/normalise_intensities.py"
