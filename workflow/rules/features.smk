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
# The cheap families share one job: one Python start-up per subject instead of five, and a
# smaller DAG for large cohorts. Radiomics (minutes, GBs at 1 mm) keeps its own job.
LESION_FAMILIES = [fam for fam in FEAT["families"] if fam != "radiomics"]
LESION_OUTPUTS = {fam: f"{SD}/features/{fam}.tsv" for fam in LESION_FAMILIES}
if FEAT_PERTURB:
    LESION_OUTPUTS["perturbed"] = f"{SD}/features/perturbed.tsv"

if FEAT_PERTURB:
    COHORT_TARGETS["features"] = subject_paths(f"{SD}/features/perturbed.tsv")


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


if LESION_OUTPUTS:

    rule extract_lesion_features:
        input:
            **FEAT_ROIS,
            manifest=f"{SD}/prep/manifest.json",
            brain_mask=f"{SD}/prep/brain_mask.nii.gz",
            transform=(
                f"{SD}/prep/to_template_affine.mat"
                if "location" in LESION_FAMILIES
                else []
            ),
            radiomics_perturbed=(
                f"{SD}/features/radiomics_perturbed.tsv"
                if FEAT_PERTURB
                and FEAT["perturbation"]["radiomics"]
                and "radiomics" in FEAT["families"]
                else []
            ),
        output:
            **LESION_OUTPUTS,
        log:
            "logs/extract_lesion_features/{cohort}_{subject}_{session}.log",
        benchmark:
            "benchmarks/rules/extract_lesion_features/{cohort}_{subject}_{session}.tsv"
        group:
            "subject"
        conda:
            "../../envs/radiomics.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=20,
        params:
            features=FEAT,
        script:
            "../../scripts/extract_lesion_features.py"
