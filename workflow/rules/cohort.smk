"""Cohort stage: aggregate per-subject features (+ feature-table cohorts), robustness, ComBat display."""

COH = config["cohort"]
COH_SETTINGS = {**COH, "seed": config["seed"]}
COH_FAMILIES = COH["families"] or config["features"]["families"]
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


rule aggregate_features:
    input:
        # extract_features writes every family and the habitat fractions of a session in one
        # job, so one of its files per session orders the DAG (families are read by path).
        features=subject_paths(f"{SD}/habitats/habitat_fractions.tsv")
        + [c["path"] for c in FEATURE_TABLE_COHORTS],
        labels=expand("results/{cohort}/labels.tsv", cohort=list(COHORTS)),
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
        subjects=SUBJECTS[["cohort", "subject", "session", "role", "site", "scanner"]].to_dict(
            "records"
        ),
        families=COH_FAMILIES,
        feature_tables=FEATURE_TABLE_COHORTS,
        label_tables={c: f"results/{c}/labels.tsv" for c in COHORTS},
    script:
        "../../scripts/aggregate_features.py"


rule feature_robustness:
    input:
        # Discovery subjects only: no statistic of a validation cohort shapes the feature set.
        perturbed=(
            subject_paths(f"{SD}/features/perturbed.tsv", role="discovery") if FEAT_PERTURB else []
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
        harmonised=report_item(
            "results/cohort/features_harmonized.tsv",
            "Features",
            "Features",
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


# Last of the run (it waits for every stage's results): a cohort without a single usable subject
# ends the run non-zero, naming the cohort and the most common reason, once all else is done.
rule check_usable_subjects:
    input:
        lambda wc: stage_results(),
        features="results/cohort/features.tsv",
        failures="results/qc/failures.tsv",
    output:
        usable="results/qc/usable_subjects.tsv",
    log:
        "logs/check_usable_subjects.log",
    benchmark:
        "benchmarks/rules/check_usable_subjects.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cohorts=list(COHORTS),
    script:
        "../../scripts/check_usable_subjects.py"


# `results/cohort/labels.tsv` also matches the intake's `results/{cohort}/labels.tsv`.
ruleorder: aggregate_features > validate_labels


# WHO CNS5 integrated type per subject from the labels that exist (midline from `location`).
WHO = "results/who_cns5"
COHORT_TARGETS["who_cns5"] = [f"{WHO}/who_cns5.tsv", f"{WHO}/counts.tsv"]
REPORT_SECTIONS["who_cns5"] = "Cohorts"


rule who_cns5:
    input:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
    output:
        types=f"{WHO}/who_cns5.tsv",
        counts=f"{WHO}/counts.tsv",
    log:
        "logs/who_cns5.log",
    benchmark:
        "benchmarks/rules/who_cns5.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../../scripts/who_cns5.py"


# Report: feature families, site effects before/after ComBat, and ICC robustness.
rule report_feature_families:
    input:
        features="results/cohort/features.tsv",
    output:
        table=f"{REPORT_DIR}/feature_families.tsv",
        table_html=report_item(f"{REPORT_DIR}/feature_families.html", "Features", "families"),
        figure=report_item(f"{REPORT_DIR}/feature_families.png", "Features", "families"),
    log:
        "logs/report/report_feature_families.log",
    benchmark:
        "benchmarks/rules/report_feature_families.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../../scripts/report_feature_families.py"


rule report_combat:
    input:
        before="results/cohort/features.tsv",
        after="results/cohort/features_harmonized.tsv",
    output:
        table=f"{REPORT_DIR}/combat_pca.tsv",
        figure=report_item(f"{REPORT_DIR}/combat_pca.png", "Features", "harmonisation"),
    log:
        "logs/report/report_combat.log",
    benchmark:
        "benchmarks/rules/report_combat.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        sites=SITES,
    script:
        "../../scripts/report_combat.py"


rule report_icc:
    input:
        icc="results/cohort/robustness_icc.tsv",
    output:
        figure=report_item(f"{REPORT_DIR}/robustness_icc.png", "Features", "robustness"),
    log:
        "logs/report/report_icc.log",
    benchmark:
        "benchmarks/rules/report_icc.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../../scripts/report_icc.py"


REPORT_TARGETS.extend(
    str(r.output[0]) for r in (rules.report_feature_families, rules.report_combat, rules.report_icc)
)
