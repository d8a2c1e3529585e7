"""Validation stage: each marker's discovery-trained model applied unchanged to validation cohorts."""

VALIDATION_COHORTS = [c["name"] for c in config["cohorts"] if c["role"] == "validation"]
VAL = "results/validation/{marker}/{cohort}"

COHORT_TARGETS["validation"] = expand(
    f"{VAL}/metrics.tsv", marker=list(MARKER_STRATEGIES), cohort=VALIDATION_COHORTS
)


rule external_validation:
    input:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
        summary="results/markers/{marker}/summary.tsv",
        models=lambda wc: expand(
            "results/markers/{marker}/{strategy}/model.joblib",
            marker=wc.marker,
            strategy=MARKER_STRATEGIES[wc.marker],
        ),
    output:
        metrics=f"{VAL}/metrics.tsv",
        predictions=f"{VAL}/predictions.tsv",
        roc=report(
            f"{VAL}/roc.png",
            category="Validation",
            subcategory="{marker}",
            labels={"marker": "{marker}", "cohort": "{cohort}"},
        ),
    log:
        "logs/external_validation/{marker}_{cohort}.log",
    benchmark:
        "benchmarks/rules/external_validation/{marker}_{cohort}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/external_validation.py"
