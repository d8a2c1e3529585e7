"""Validation stage: each marker's discovery-trained models applied unchanged to validation cohorts."""

VALIDATION_COHORTS = [c["name"] for c in config["cohorts"] if c["role"] == "validation"]
VAL = "results/validation/{marker}/{cohort}"

COHORT_TARGETS["validation"] = expand(
    f"{VAL}/metrics.tsv", marker=list(MARKER_STRATEGIES), cohort=VALIDATION_COHORTS
)
REPORT_SECTIONS["validation"] = "Validation"


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
        crops=lambda wc: [
            cnn_crops(wc.marker, s)
            for s in MARKER_STRATEGIES[wc.marker]
            if STRATEGY_KIND[s] == "cnn"
        ],
    output:
        metrics=f"{VAL}/metrics.tsv",
        predictions=f"{VAL}/predictions.tsv",
        roc=report_item(
            f"{VAL}/roc.png",
            "Validation",
            "{marker}",
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
        crops=lambda wc: {
            s: cnn_crops(wc.marker, s)
            for s in MARKER_STRATEGIES[wc.marker]
            if STRATEGY_KIND[s] == "cnn"
        },
    script:
        "../../scripts/external_validation.py"


# Report: every marker's cross-validated and external AUCs next to the review's figures.
rule report_marker_summary:
    input:
        summaries=COHORT_TARGETS["markers"],
        validation=COHORT_TARGETS["validation"],
        review=config["report"]["review_reference"],
    output:
        table=f"{REPORT_DIR}/marker_summary.tsv",
        table_html=report_item(f"{REPORT_DIR}/marker_summary.html", "Markers", "all markers"),
        figure=report_item(f"{REPORT_DIR}/marker_summary.png", "Markers", "all markers"),
        review=f"{REPORT_DIR}/review_comparison.tsv",
        review_html=report_item(f"{REPORT_DIR}/review_comparison.html", "Markers", "all markers"),
    log:
        "logs/report/report_marker_summary.log",
    benchmark:
        "benchmarks/rules/report_marker_summary.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        # The stage folders sit beside the report folder: results/{markers,validation}.
        markers_root=lambda w, output: Path(output.table).parents[1] / "markers",
        validation_root=lambda w, output: Path(output.table).parents[1] / "validation",
    script:
        "../../scripts/report_markers.py"


REPORT_TARGETS.append(str(rules.report_marker_summary.output.table))
