"""Features stage: per-subject feature tables (one row per family) and the robustness table."""

FEAT = config["features"]
FEAT_ROIS = {
    roi: f"{SD}/seg/rois/{roi}.nii.gz"
    for roi in (
        "whole_tumor",
        "tumor_core",
        "enhancing",
        "necrosis",
        "edema",
        "peritumoral_near",
        "peritumoral_far",
    )
}
FEAT_PERTURB = bool(FEAT["perturbation"]["enabled"])

if FEAT_PERTURB:
    COHORT_TARGETS["features"] = subject_paths(f"{SD}/features/perturbed.tsv")


rule extract_lesion_wide:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
    output:
        table=f"{SD}/features/lesion_wide.tsv",
    log:
        "logs/extract_lesion_wide/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_lesion_wide/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_lesion_wide.py"


rule extract_histogram:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
    output:
        table=f"{SD}/features/histogram.tsv",
    log:
        "logs/extract_histogram/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_histogram/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_histogram.py"


rule extract_radiomics:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
        params=FEAT["radiomics_params"],
    output:
        table=f"{SD}/features/radiomics.tsv",
        # Radiomics part of perturbed.tsv, measured in the same filter pass (cheap there).
        perturbed=f"{SD}/features/radiomics_perturbed.tsv",
    log:
        "logs/extract_radiomics/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_radiomics/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        # Wavelet on a 1 mm brain: ~1.9 GB peak (benchmarks/radiomics_speed.py).
        mem_mb=4000,
        runtime=60,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_radiomics.py"


rule extract_perturbed:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
        radiomics_perturbed=(
            f"{SD}/features/radiomics_perturbed.tsv"
            if FEAT["perturbation"]["radiomics"] and "radiomics" in FEAT["families"]
            else []
        ),
    output:
        table=f"{SD}/features/perturbed.tsv",
    log:
        "logs/extract_perturbed/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_perturbed/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_perturbed.py"


rule extract_mismatch:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
    output:
        table=f"{SD}/features/mismatch.tsv",
    log:
        "logs/extract_mismatch/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_mismatch/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_mismatch.py"


rule extract_location:
    input:
        **FEAT_ROIS,
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
        transform=f"{SD}/prep/to_template_affine.mat",
    output:
        table=f"{SD}/features/location.tsv",
    log:
        "logs/extract_location/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_location/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        features=FEAT,
    script:
        "../../scripts/extract_location.py"
