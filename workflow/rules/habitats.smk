"""Habitats stage: population habitat model (discovery only), per-subject maps and change.

The per-session voxel samples the model is fitted on come from `segment_tumor`; each session's
habitat map and fractions from `extract_features`, which reads the images once for all features.
"""

HAB = config["habitats"]
HAB_COHORT_OUTPUTS = {
    "changes": f"{HAB_DIR}/spatiotemporal_changes.tsv",
    "odds_ratios": f"{HAB_DIR}/spatiotemporal_or.tsv",
    "hazard_ratios": f"{HAB_DIR}/spatiotemporal_hr.tsv",
    "classifier": f"{HAB_DIR}/progression_classifier.tsv",
}

# Per-session habitat maps are built through the feature tables (same job), not listed here.
COHORT_TARGETS["habitats"] = [f"{HAB_DIR}/centroids.tsv", *HAB_COHORT_OUTPUTS.values()]
REPORT_SECTIONS["habitats"] = "Habitats"


rule fit_habitat_model:
    input:
        # Discovery cohorts only: validation subjects never shape the habitats.
        samples=subject_paths(f"{SD}/habitats/voxel_sample.npz", role="discovery"),
    output:
        model=HABITAT_MODEL,
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


rule spatiotemporal_habitats:
    input:
        fractions=subject_paths(f"{SD}/habitats/habitat_fractions.tsv"),
        labels=HAB["labels"],
    output:
        **HAB_COHORT_OUTPUTS,
        forest=report_item(
            f"{HAB_DIR}/spatiotemporal_forest.png",
            "Habitats",
            "spatiotemporal",
            labels={"figure": "habitat change: odds and hazard ratios"},
        ),
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
