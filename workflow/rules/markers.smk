"""Markers stage: per-marker strategies in nested CV (discovery rows only), the unsupervised-first
subtype association, the cnn strategy's crops and saliency, shuffled-label controls and verdicts."""

import yaml

from radiogenomics.cohort.marker_config import load_markers, strategy_kinds

# A typo in the markers file fails here, before any job runs.
validate(yaml.safe_load(open(COH["markers_file"])) or {}, "../schemas/markers.schema.yaml")
MARKERS_CFG = load_markers(COH["markers_file"])
MARKER_STRATEGIES = {m: list(spec["strategies"]) for m, spec in MARKERS_CFG.items()}
# Strategy name -> kind (supervised, subtypes, cnn); a name means one kind in every marker.
STRATEGY_KIND = strategy_kinds(MARKERS_CFG)
CNN_STRATEGIES = [
    (m, s) for m, names in MARKER_STRATEGIES.items() for s in names if STRATEGY_KIND[s] == "cnn"
]
MK = "results/markers/{marker}/{strategy}"
MK_LABELS = {"marker": "{marker}", "strategy": "{strategy}"}
MARKER_INPUTS = {
    "features": "results/cohort/features.tsv",
    "labels": "results/cohort/labels.tsv",
    "dropped": COH_DROPPED,
    "markers": COH["markers_file"],
}


COHORT_TARGETS["markers"] = [f"results/markers/{m}/summary.tsv" for m in MARKER_STRATEGIES]
COHORT_TARGETS["markers"] += [f"results/markers/{m}/{s}/saliency.tsv" for m, s in CNN_STRATEGIES]
REPORT_SECTIONS["markers"] = "Markers"


wildcard_constraints:
    marker="|".join(MARKER_STRATEGIES) or "none",
    strategy="[A-Za-z0-9_]+",


rule marker_strategy:
    input:
        **MARKER_INPUTS,
        crops=lambda wc: cnn_crops(wc.marker, wc.strategy),
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
    wildcard_constraints:
        strategy=strategies_of_kind("supervised", "cnn"),
    # Models before reports: a marker's summary (its primary's permutations, the longest jobs)
    # can only start once all of its strategies are done, so they must not wait behind reports.
    priority: 10
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


# Unsupervised first (MGMT, EGFR): subtypes and habitat fractions tested against the marker.
rule marker_subtypes:
    input:
        **MARKER_INPUTS,
    output:
        cv_metrics=f"{MK}/cv_metrics.tsv",
        predictions=f"{MK}/predictions.tsv",
        model=f"{MK}/model.joblib",
        roc=report_item(
            f"{MK}/subtypes_pca.png",
            "Markers",
            "{marker}",
            labels=MK_LABELS | {"figure": "subtypes (PCA)"},
        ),
        calibration=report_item(
            f"{MK}/association.png",
            "Markers",
            "{marker}",
            labels=MK_LABELS | {"figure": "association (FDR)"},
        ),
        coefficients=f"{MK}/association.tsv",
    log:
        "logs/marker_subtypes/{marker}_{strategy}.log",
    benchmark:
        "benchmarks/rules/marker_subtypes/{marker}_{strategy}.tsv"
    wildcard_constraints:
        strategy=strategies_of_kind("subtypes"),
    priority: 10
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/marker_strategy.py"


# Tumour-centred crops of every imaged session for a cnn strategy, built once and cached (.npz);
# a session that cannot be cropped is listed in crop_failures.tsv and gets no crop.
rule cnn_crops:
    input:
        sessions=subject_paths(f"{SD}/habitats/habitat_fractions.tsv"),
        markers=COH["markers_file"],
    output:
        crops=f"{MK}/crops.npz",
        failures=f"{MK}/crop_failures.tsv",
    log:
        "logs/cnn_crops/{marker}_{strategy}.log",
    benchmark:
        "benchmarks/rules/cnn_crops/{marker}_{strategy}.tsv"
    wildcard_constraints:
        strategy=strategies_of_kind("cnn"),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        sessions=SUBJECTS[["cohort", "subject", "session"]].to_dict("records"),
    script:
        "../../scripts/cnn_crops.py"


# Grad-CAM of the cnn strategy's final model for a few confidently predicted sessions.
rule cnn_saliency:
    input:
        model=f"{MK}/model.joblib",
        predictions=f"{MK}/predictions.tsv",
        crops=f"{MK}/crops.npz",
    output:
        table=f"{MK}/saliency.tsv",
        folder=report_item(
            directory(f"{MK}/saliency"),
            "Markers",
            "{marker}",
            patterns=["{name}.png"],
            labels=MK_LABELS | {"figure": "Grad-CAM {name}"},
            caption="saliency",
        ),
    log:
        "logs/cnn_saliency/{marker}_{strategy}.log",
    benchmark:
        "benchmarks/rules/cnn_saliency/{marker}_{strategy}.tsv"
    wildcard_constraints:
        strategy=strategies_of_kind("cnn"),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        n=4,
        # results/markers/{marker}/{strategy}/model.joblib -> results
        results=lambda w, input: Path(input.model).parents[3],
    script:
        "../../scripts/cnn_saliency.py"


rule marker_summary:
    input:
        **MARKER_INPUTS,
        metrics=lambda wc: expand(
            f"results/markers/{wc.marker}/{{s}}/cv_metrics.tsv",
            s=MARKER_STRATEGIES[wc.marker],
        ),
        crops=lambda wc: [
            cnn_crops(wc.marker, s)
            for s in MARKER_STRATEGIES[wc.marker]
            if STRATEGY_KIND[s] == "cnn"
        ],
    output:
        summary="results/markers/{marker}/summary.tsv",
    log:
        "logs/marker_summary/{marker}.log",
    benchmark:
        "benchmarks/rules/marker_summary/{marker}.tsv"
    priority: 20
    conda:
        "../../envs/modelling.yaml"
    threads: COH["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        settings=COH_SETTINGS,
        crops=lambda wc: {
            s: cnn_crops(wc.marker, s)
            for s in MARKER_STRATEGIES[wc.marker]
            if STRATEGY_KIND[s] == "cnn"
        },
    script:
        "../../scripts/marker_summary.py"
