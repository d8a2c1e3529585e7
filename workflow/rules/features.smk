"""Features stage: per-subject feature tables (one row per family), robustness inputs, habitat maps."""

FEAT = config["features"]
FEAT_PERTURB = bool(FEAT["perturbation"]["enabled"])
FEAT_RADIOMICS_PERTURB = (
    FEAT_PERTURB
    and FEAT["perturbation"]["radiomics"]
    and "radiomics" in FEAT["families"]
)
FEAT_OUTPUTS = {fam: f"{SD}/features/{fam}.tsv" for fam in FEAT["families"]}
if FEAT_PERTURB:
    FEAT_OUTPUTS["perturbed"] = f"{SD}/features/perturbed.tsv"
if FEAT_RADIOMICS_PERTURB:
    # Radiomics part of perturbed.tsv, measured in the same filter pass as radiomics.tsv.
    FEAT_OUTPUTS["radiomics_perturbed"] = f"{SD}/features/radiomics_perturbed.tsv"


# Every family, and the session's habitat map, in one job per session: they read the same images
# and ROIs, and one Python start-up and one DAG node per session keep large cohorts fast. The job
# waits for the population habitat model (fitted on discovery sessions only).
rule extract_features:
    input:
        # One file per upstream job stands for all its outputs (read by path: brain mask, atlas
        # affine, the seven ROIs), which keeps a 1,000-subject DAG ~8,000 edges smaller.
        manifest=f"{SD}/prep/manifest.json",
        segmentation=f"{SD}/seg/tumor_labels.json",
        params=FEAT["radiomics_params"] if "radiomics" in FEAT["families"] else [],
        habitat_model=HABITAT_MODEL,
    output:
        **FEAT_OUTPUTS,
        habitat_map=f"{SD}/habitats/habitat_map.nii.gz",
        habitat_fractions=f"{SD}/habitats/habitat_fractions.tsv",
        habitat_overlay=f"{SD}/habitats/overlay.png",
    log:
        "logs/extract_features/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/extract_features/{cohort}_{subject}_{session}.tsv"
    # No group: it waits for the population habitat model, which waits for every discovery
    # subject's group "subject", so on SLURM it is the subject's one job after that group.
    conda:
        "../../envs/radiomics.yaml"
    threads: 1
    resources:
        # Wavelet radiomics on a 1 mm brain: ~1.9 GB peak (benchmarks/radiomics_speed.py).
        mem_mb=4000,
        runtime=80,
    params:
        features=FEAT,
        habitats=config["habitats"],
        atlas_syn=ATLAS_SYN,
    script:
        "../../scripts/extract_features.py"
