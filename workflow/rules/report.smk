"""Report stage: figures and tables that `snakemake --report results/report.html` collects.

Each category of the report is built from the run's own outputs. Where a stage's file set is only
known when it has run (per-marker strategies, survival plots, ...), a rule collects the stage's
figures into a folder at run time and the report globs it with `patterns`.
"""

import re

from snakemake.utils import validate


report: "../report/workflow.rst"


validate(config.setdefault("report", {}), "../schemas/report.schema.yaml")
REP = config["report"]
REPORT_DIR = "results/report"
SITES = {name: c.get("site") or name for name, c in COHORTS.items()}
# Stages whose figures are collected wholesale, and their report category names.
REPORT_SECTIONS = {
    "markers": "Markers",
    "unsupervised": "Unsupervised",
    "survival": "Survival",
    "habitats": "Habitats",
    "validation": "Validation",
}


include: "report_common.smk"


HAS_FAILURES = producible("results/qc/failures.tsv")
HAS_QC = report_ready(f"{SD}/qc/metrics.tsv")
SKIP_REPORTED = reported_elsewhere()
# The QC stage may embed every subject's overlay itself; then the report adds none of its own.
QC_OVERLAYS = report_ready(f"{SD}/qc/overlay.png") and not any(
    re.match(rx, first_subject(f"{SD}/qc/overlay.png")) for rx in SKIP_REPORTED
)
HAS_FEATURES = producible("results/cohort/features.tsv")
HAS_COMBAT = HAS_FEATURES and producible("results/cohort/features_harmonized.tsv")
HAS_ICC = producible("results/cohort/robustness_icc.tsv")
HAS_IBSI = os.path.exists("docs/ibsi_conformance.md")
ACTIVE_SECTIONS = [s for s in REPORT_SECTIONS if stage_targets(s)]
HAS_MARKERS = bool(stage_targets("markers") or stage_targets("validation"))

_targets = [
    f"{REPORT_DIR}/cohort_overview.png",
    f"{REPORT_DIR}/run_benchmarks.tsv",
    *expand(f"{REPORT_DIR}/{{section}}", section=ACTIVE_SECTIONS),
]
if HAS_QC:
    _targets.append(f"{REPORT_DIR}/qc_metrics.tsv")
if HAS_FEATURES:
    _targets.append(f"{REPORT_DIR}/feature_families.tsv")
if HAS_COMBAT:
    _targets.append(f"{REPORT_DIR}/combat_pca.tsv")
if HAS_ICC:
    _targets.append(f"{REPORT_DIR}/robustness_icc.png")
if HAS_IBSI:
    _targets.append(f"{REPORT_DIR}/ibsi_conformance.html")
if HAS_MARKERS:
    _targets.append(f"{REPORT_DIR}/marker_summary.tsv")
COHORT_TARGETS["report"] = _targets


rule report_cohorts:
    input:
        intake="results/qc/intake_report.tsv",
        failures=["results/qc/failures.tsv"] if HAS_FAILURES else [],
    output:
        overview=report(
            f"{REPORT_DIR}/cohort_overview.png",
            caption="../report/cohort_overview.rst",
            category="Cohorts",
            subcategory="overview",
        ),
        counts=f"{REPORT_DIR}/cohort_counts.tsv",
        counts_html=report(
            f"{REPORT_DIR}/cohort_counts.html",
            caption="../report/cohort_counts.rst",
            category="Cohorts",
            subcategory="overview",
        ),
        labels=f"{REPORT_DIR}/label_availability.tsv",
        labels_html=report(
            f"{REPORT_DIR}/label_availability.html",
            caption="../report/label_availability.rst",
            category="Cohorts",
            subcategory="labels",
        ),
        failures_html=report(
            f"{REPORT_DIR}/failures.html",
            caption="../report/failures.rst",
            category="Cohorts",
            subcategory="failures",
        ),
    log:
        "logs/report/report_cohorts.log",
    benchmark:
        "benchmarks/rules/report_cohorts.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        sites=SITES,
        max_rows=REP["table_max_rows"],
    script:
        "../../scripts/report_cohorts.py"


if HAS_QC:

    rule report_qc:
        input:
            metrics=subject_paths(f"{SD}/qc/metrics.tsv"),
            overlays=subject_paths(f"{SD}/qc/overlay.png") if QC_OVERLAYS else [],
        output:
            table=f"{REPORT_DIR}/qc_metrics.tsv",
            table_html=report(
                f"{REPORT_DIR}/qc_metrics.html",
                caption="../report/qc_metrics.rst",
                category="QC",
                subcategory="metrics",
            ),
            figure=report(
                f"{REPORT_DIR}/qc_metrics.png",
                caption="../report/qc_metrics.rst",
                category="QC",
                subcategory="metrics",
            ),
            overlays=report(
                directory(f"{REPORT_DIR}/qc_overlays"),
                patterns=["{name}.png"],
                caption="../report/qc_overlay.rst",
                category="QC",
                subcategory="overlays",
                labels={"subject/session": "{name}"},
            ),
        log:
            "logs/report/report_qc.log",
        benchmark:
            "benchmarks/rules/report_qc.tsv"
        conda:
            "../../envs/modelling.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            outlier_z=REP["outlier_z"],
            max_overlays=REP["max_overlays"],
        script:
            "../../scripts/report_qc.py"


if HAS_FEATURES:

    rule report_feature_families:
        input:
            features="results/cohort/features.tsv",
        output:
            table=f"{REPORT_DIR}/feature_families.tsv",
            table_html=report(
                f"{REPORT_DIR}/feature_families.html",
                caption="../report/feature_families.rst",
                category="Features",
                subcategory="families",
            ),
            figure=report(
                f"{REPORT_DIR}/feature_families.png",
                caption="../report/feature_families.rst",
                category="Features",
                subcategory="families",
            ),
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
            "../../scripts/report_features.py"


if HAS_COMBAT:

    rule report_combat:
        input:
            before="results/cohort/features.tsv",
            after="results/cohort/features_harmonized.tsv",
        output:
            table=f"{REPORT_DIR}/combat_pca.tsv",
            figure=report(
                f"{REPORT_DIR}/combat_pca.png",
                caption="../report/combat_pca.rst",
                category="Features",
                subcategory="harmonisation",
            ),
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
            "../../scripts/report_features.py"


if HAS_ICC:

    rule report_icc:
        input:
            icc="results/cohort/robustness_icc.tsv",
        output:
            figure=report(
                f"{REPORT_DIR}/robustness_icc.png",
                caption="../report/robustness_icc.rst",
                category="Features",
                subcategory="robustness",
            ),
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
            "../../scripts/report_features.py"


if HAS_IBSI:

    rule report_ibsi:
        input:
            md="docs/ibsi_conformance.md",
        output:
            html=report(
                f"{REPORT_DIR}/ibsi_conformance.html",
                caption="../report/ibsi_conformance.rst",
                category="Features",
                subcategory="IBSI conformance",
            ),
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
            "../../scripts/report_features.py"


rule report_section:
    input:
        lambda wc: stage_targets(wc.section),
    output:
        folder=report(
            directory(f"{REPORT_DIR}/{{section}}"),
            patterns=[
                "{group}/{name}.png",
                "{group}/{name}.svg",
                "{group}/{name}.html",
            ],
            caption="../report/section.rst",
            category=lambda wc: REPORT_SECTIONS[wc.section],
            subcategory="{group}",
            labels={"item": "{name}"},
        ),
    log:
        "logs/report/report_section_{section}.log",
    benchmark:
        "benchmarks/rules/report_section/{section}.tsv"
    wildcard_constraints:
        section="|".join(REPORT_SECTIONS),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=lambda wc: f"results/{wc.section}",
        # Example per-subject habitat overlays (the population figures come from results/habitats).
        overlays=lambda wc: (
            subject_paths(f"{SD}/habitats/overlay.png")
            if wc.section == "habitats"
            else []
        ),
        max_overlays=REP["max_overlays"],
        max_rows=REP["table_max_rows"],
        skip=SKIP_REPORTED,
    script:
        "../../scripts/report_section.py"


if HAS_MARKERS:

    rule report_marker_summary:
        input:
            stages=stage_targets("markers") + stage_targets("validation"),
            review=REP["review_reference"],
        output:
            table=f"{REPORT_DIR}/marker_summary.tsv",
            table_html=report(
                f"{REPORT_DIR}/marker_summary.html",
                caption="../report/marker_summary.rst",
                category="Markers",
                subcategory="all markers",
            ),
            figure=report(
                f"{REPORT_DIR}/marker_summary.png",
                caption="../report/marker_summary.rst",
                category="Markers",
                subcategory="all markers",
            ),
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
            markers_root=lambda w, output: str(
                Path(output.table).parent.parent / "markers"
            ),
            validation_root=lambda w, output: str(
                Path(output.table).parent.parent / "validation"
            ),
        script:
            "../../scripts/report_markers.py"


rule report_run:
    input:
        run_inputs,
    output:
        benchmarks=f"{REPORT_DIR}/run_benchmarks.tsv",
        benchmarks_html=report(
            f"{REPORT_DIR}/run_benchmarks.html",
            caption="../report/run_benchmarks.rst",
            category="Run",
            subcategory="runtime and memory",
        ),
        benchmarks_figure=report(
            f"{REPORT_DIR}/run_benchmarks.png",
            caption="../report/run_benchmarks.rst",
            category="Run",
            subcategory="runtime and memory",
        ),
        versions=f"{REPORT_DIR}/software_versions.tsv",
        versions_html=report(
            f"{REPORT_DIR}/software_versions.html",
            caption="../report/software_versions.rst",
            category="Run",
            subcategory="software",
        ),
    log:
        "logs/report/report_run.log",
    benchmark:
        "benchmarks/rules/report_run.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        benchmarks="benchmarks/rules",
    script:
        "../../scripts/report_run.py"
