"""Features stage: per-subject feature tables (one row per family), robustness inputs, habitat maps."""

FEAT = config["features"]
FEAT_PERTURB = FEAT["perturbation"]["enabled"]
FEAT_OUTPUTS = {fam: f"{SD}/features/{fam}.tsv" for fam in FEAT["families"]}
if FEAT_PERTURB:
    FEAT_OUTPUTS["perturbed"] = f"{SD}/features/perturbed.tsv"
    if FEAT["perturbation"]["radiomics"] and "radiomics" in FEAT["families"]:
        # Radiomics part of perturbed.tsv, measured in the same filter pass as radiomics.tsv.
        FEAT_OUTPUTS["radiomics_perturbed"] = f"{SD}/features/radiomics_perturbed.tsv"
FEAT_SETTINGS = {
    "features": FEAT,
    "habitats": config["habitats"],
    "atlas_syn": ATLAS_SYN,
}


# Every family and the session's habitat map in one job (radiogenomics.jobs.extract_features);
# it waits for the population habitat model, fitted on discovery sessions only.
rule extract_features:
    input:
        # One file per upstream job stands for all its outputs (the rest are read by path), which
        # keeps large DAGs small.
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
        # Wavelet radiomics on a 1 mm brain (docs/performance.md).
        mem_mb=4000,
        runtime=80,
    params:
        settings=FEAT_SETTINGS,
    script:
        "../../scripts/extract_features.py"


# Report: the IBSI conformance page the project ships (docs/, found from the project folder).
rule report_ibsi:
    input:
        md=f"{workflow.basedir}/docs/ibsi_conformance.md",
    output:
        html=report_item(f"{REPORT_DIR}/ibsi_conformance.html", "Features", "IBSI conformance"),
    log:
        "logs/report/report_ibsi.log",
    benchmark:
        "benchmarks/rules/report_ibsi.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../../scripts/report_ibsi.py"


REPORT_TARGETS.append(str(rules.report_ibsi.output.html))
