"""Habitats stage: population habitat model (discovery only), per-subject maps and change."""

HAB = config["habitats"]
HAB_ROI = f"{SD}/seg/rois/{HAB['roi']}.nii.gz"
HAB_DIR = "results/habitats"
HAB_COHORT_OUTPUTS = {
    "changes": f"{HAB_DIR}/spatiotemporal_changes.tsv",
    "odds_ratios": f"{HAB_DIR}/spatiotemporal_or.tsv",
    "hazard_ratios": f"{HAB_DIR}/spatiotemporal_hr.tsv",
    "forest": f"{HAB_DIR}/spatiotemporal_forest.png",
    "classifier": f"{HAB_DIR}/progression_classifier.tsv",
}

COHORT_TARGETS["habitats"] = [
    f"{HAB_DIR}/centroids.tsv",
    *HAB_COHORT_OUTPUTS.values(),
    *subject_paths(f"{SD}/habitats/overlay.png"),
]


rule sample_habitat_voxels:
    input:
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
        roi=HAB_ROI,
        whole_tumor=f"{SD}/seg/rois/whole_tumor.nii.gz",
    output:
        sample=f"{SD}/habitats/voxel_sample.npz",
    log:
        "logs/sample_habitat_voxels/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/sample_habitat_voxels/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        habitats=HAB,
        seed=config["seed"],
    script:
        "../../scripts/sample_habitat_voxels.py"


rule fit_habitat_model:
    input:
        # Discovery cohorts only: validation subjects never shape the habitats.
        samples=subject_paths(f"{SD}/habitats/voxel_sample.npz", role="discovery"),
    output:
        model=f"{HAB_DIR}/model.joblib",
        centroids=f"{HAB_DIR}/centroids.tsv",
        selection=f"{HAB_DIR}/model_selection.tsv",
    log:
        "logs/fit_habitat_model.log",
    benchmark:
        "benchmarks/rules/fit_habitat_model.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        habitats=HAB,
        seed=config["seed"],
    script:
        "../../scripts/fit_habitat_model.py"


# Not in group "subject": it waits for the population model, which waits for every discovery
# subject's group, so grouping it there would make the groups depend on each other.
rule apply_habitat_model:
    input:
        model=f"{HAB_DIR}/model.joblib",
        manifest=f"{SD}/prep/manifest.json",
        brain_mask=f"{SD}/prep/brain_mask.nii.gz",
        roi=HAB_ROI,
        whole_tumor=f"{SD}/seg/rois/whole_tumor.nii.gz",
    output:
        habitat_map=f"{SD}/habitats/habitat_map.nii.gz",
        fractions=f"{SD}/habitats/habitat_fractions.tsv",
        overlay=f"{SD}/habitats/overlay.png",
    log:
        "logs/apply_habitat_model/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/apply_habitat_model/{cohort}_{subject}_{session}.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        habitats=HAB,
    script:
        "../../scripts/apply_habitat_model.py"


rule spatiotemporal_habitats:
    input:
        fractions=subject_paths(f"{SD}/habitats/habitat_fractions.tsv"),
        labels=HAB["labels"],
    output:
        **HAB_COHORT_OUTPUTS,
    log:
        "logs/spatiotemporal_habitats.log",
    benchmark:
        "benchmarks/rules/spatiotemporal_habitats.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        habitats=HAB,
        seed=config["seed"],
    script:
        "../../scripts/spatiotemporal_habitats.py"
