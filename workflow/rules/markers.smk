"""Markers stage: per-marker strategies in nested CV (discovery rows only), shuffled-label controls."""

import yaml

from radiogenomics.cohort.marker_config import load_markers

# A typo in the markers file fails here, before any job runs.
validate(yaml.safe_load(open(COH["markers_file"])) or {}, "../schemas/markers.schema.yaml")
MARKERS_CFG = load_markers(COH["markers_file"])
MARKER_STRATEGIES = {m: list(spec["strategies"]) for m, spec in MARKERS_CFG.items()}
MK = "results/markers/{marker}/{strategy}"
MK_LABELS = {"marker": "{marker}", "strategy": "{strategy}"}
MARKER_INPUTS = {
    "features": "results/cohort/features.tsv",
    "labels": "results/cohort/labels.tsv",
    "dropped": COH_DROPPED,
    "markers": COH["markers_file"],
}

COHORT_TARGETS["markers"] = [f"results/markers/{m}/summary.tsv" for m in MARKER_STRATEGIES]
REPORT_SECTIONS["markers"] = "Markers"


wildcard_constraints:
    marker="|".join(MARKER_STRATEGIES) or "none",
    strategy="[A-Za-z0-9_]+",


rule marker_strategy:
    input:
        **MARKER_INPUTS,
    output:
        cv_metrics=f"{MK}/cv_metrics.tsv",
        predictions=f"{MK}/predictions.tsv",
        model=f"{MK}/model.joblib",
        roc=report_item(
            f"{MK}/roc.png", "Markers", "{marker}", labels=MK_LABELS | {"figure": "ROC"}
        ),
        calibration=report_item(
            f"{MK}/calibration.png",
            "Markers",
            "{marker}",
            labels=MK_LABELS | {"figure": "calibration"},
        ),
        coefficients=f"{MK}/coefficients.tsv",
    log:
        "logs/marker_strategy/{marker}_{strategy}.log",
    benchmark:
        "benchmarks/rules/marker_strategy/{marker}_{strategy}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: COH["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/marker_strategy.py"


rule marker_summary:
    input:
        **MARKER_INPUTS,
        metrics=lambda wc: expand(
            f"results/markers/{wc.marker}/{{s}}/cv_metrics.tsv",
            s=MARKER_STRATEGIES[wc.marker],
        ),
    output:
        summary="results/markers/{marker}/summary.tsv",
    log:
        "logs/marker_summary/{marker}.log",
    benchmark:
        "benchmarks/rules/marker_summary/{marker}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: COH["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/marker_summary.py"
