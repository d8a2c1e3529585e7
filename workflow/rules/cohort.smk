"""Cohort stage: aggregate per-subject features (+ feature-table cohorts), robustness, ComBat display."""

COH = config["cohort"]
COH_SETTINGS = {**COH, "seed": config["seed"]}
COH_FAMILIES = (
    COH["families"]
    or config.get("features", {}).get("families")
    or [
        "lesion_wide",
        "histogram",
        "radiomics",
        "mismatch",
        "location",
    ]
)
COH_HABITATS = stage_enabled("habitats")
COH_PERTURB = stage_enabled("features") and bool(
    config.get("features", {}).get("perturbation", {}).get("enabled", False)
)
FEATURE_TABLE_COHORTS = [c for c in config["cohorts"] if c["layout"] == "feature-table"]
# Cheap, once: subject records handed to the aggregation script.
COH_SUBJECT_RECORDS = SUBJECTS[
    ["cohort", "subject", "session", "role", "site", "scanner"]
].to_dict("records")
COH_DROPPED = "results/cohort/dropped_features.tsv"

COHORT_TARGETS["cohort"] = [
    "results/cohort/features.tsv",
    "results/cohort/features_harmonized.tsv",
    "results/cohort/labels.tsv",
    "results/qc/failures.tsv",
    "results/cohort/robustness_icc.tsv",
    COH_DROPPED,
]


_NOT_EXTRACTED = sorted(set(COH_FAMILIES) - set(config["features"]["families"]))
if _NOT_EXTRACTED:
    raise ValueError(
        f"cohort.families {_NOT_EXTRACTED} are not in features.families "
        f"{config['features']['families']}: no job writes them"
    )
# extract_features writes every family and the habitat fractions of a session in one job, so one
# of its files per session orders the DAG (aggregation reads the families by path): 1,000 edges
# per 1,000 sessions instead of 6,000. Plus the feature-table CSVs. Built once.
COH_FEATURE_INPUTS = subject_paths(
    f"{SD}/habitats/habitat_fractions.tsv"
    if COH_HABITATS
    else f"{SD}/features/{COH_FAMILIES[0]}.tsv"
) + [c["path"] for c in FEATURE_TABLE_COHORTS]


rule aggregate_features:
    input:
        features=COH_FEATURE_INPUTS,
        labels=expand("results/{cohort}/labels.tsv", cohort=list(COHORTS)),
        label_issues=expand(
            "results/qc/labels/{cohort}_issues.tsv", cohort=list(COHORTS)
        ),
    output:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
        failures="results/qc/failures.tsv",
        summary="results/cohort/aggregation_summary.tsv",
    log:
        "logs/aggregate_features.log",
    benchmark:
        "benchmarks/rules/aggregate_features.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        subjects=COH_SUBJECT_RECORDS,
        families=COH_FAMILIES,
        feature_tables=FEATURE_TABLE_COHORTS,
        label_tables={c: f"results/{c}/labels.tsv" for c in COHORTS},
        label_issues={c: f"results/qc/labels/{c}_issues.tsv" for c in COHORTS},
        label_sources={c: COHORTS[c].get("labels") for c in COHORTS},
    script:
        "../../scripts/aggregate_features.py"


rule feature_robustness:
    input:
        # Discovery subjects only: no statistic of a validation cohort shapes the feature set.
        perturbed=(
            subject_paths(f"{SD}/features/perturbed.tsv", role="discovery")
            if COH_PERTURB
            else []
        ),
    output:
        icc="results/cohort/robustness_icc.tsv",
        dropped=COH_DROPPED,
    log:
        "logs/feature_robustness.log",
    benchmark:
        "benchmarks/rules/feature_robustness.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        threshold=COH["icc_threshold"],
        kind=COH["icc_kind"],
    script:
        "../../scripts/feature_robustness.py"


rule harmonise_features:
    input:
        features="results/cohort/features.tsv",
    output:
        harmonised=report(
            "results/cohort/features_harmonized.tsv",
            category="Features",
            subcategory="Features",
            labels={"table": "ComBat-harmonised features (display)"},
        ),
    log:
        "logs/harmonise_features.log",
    benchmark:
        "benchmarks/rules/harmonise_features.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        batch=COH["combat"]["batch_column"],
        enabled=COH["combat"]["enabled"],
    script:
        "../../scripts/harmonise_features.py"


# `results/cohort/labels.tsv` also matches the intake's `results/{cohort}/labels.tsv`.
ruleorder: aggregate_features > validate_labels
