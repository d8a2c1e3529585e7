"""Intake stage: cohort layouts -> canonical RAS NIfTI + de-identified sidecars; labels validation."""


rule intake_subject:
    input:
        intake_inputs,
    output:
        manifest=f"{SD}/anat/manifest.json",
    log:
        "logs/intake_subject/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/intake_subject/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        cohorts=COHORTS,
        row=intake_params_row,
        sequences=config["sequences"],
    script:
        "../../scripts/intake_subject.py"


rule validate_labels:
    input:
        labels_table,
    output:
        labels="results/{cohort}/labels.tsv",
        issues="results/qc/labels/{cohort}_issues.tsv",
    log:
        "logs/validate_labels/{cohort}.log",
    benchmark:
        "benchmarks/rules/validate_labels/{cohort}.tsv"
    wildcard_constraints:
        # results/cohort/labels.tsv is the merged table of the cohort stage.
        cohort="|".join(COHORTS),
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        spec=lambda wc: cohort_config(wc.cohort)["labels_spec"],
        subjects=lambda wc: sorted(set(SUBJECTS[SUBJECTS.cohort == wc.cohort].subject)),
    script:
        "../../scripts/validate_labels.py"


rule intake_report:
    input:
        manifests=subject_paths(f"{SD}/anat/manifest.json"),
        labels=expand("results/{cohort}/labels.tsv", cohort=list(COHORTS)),
    output:
        report="results/qc/intake_report.tsv",
        unmatched="results/qc/labels_without_images.tsv",
    log:
        "logs/intake_report.log",
    benchmark:
        "benchmarks/rules/intake_report.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cohorts=list(COHORTS),
        feature_tables=FEATURE_TABLE_COHORTS,
        labels_files=per_cohort("labels"),
        refused=REFUSED_IDS.to_dict("records"),
    script:
        "../../scripts/intake_report.py"


COHORT_TARGETS["intake"] = [rules.intake_report.output.report]


# Report: subjects per cohort and site, known labels, and every failed subject.
rule report_cohorts:
    input:
        intake="results/qc/intake_report.tsv",
        failures="results/qc/failures.tsv",
        label_issues=expand("results/qc/labels/{cohort}_issues.tsv", cohort=list(COHORTS)),
    output:
        overview=report_item(f"{REPORT_DIR}/cohort_overview.png", "Cohorts", "overview"),
        counts=f"{REPORT_DIR}/cohort_counts.tsv",
        counts_html=report_item(f"{REPORT_DIR}/cohort_counts.html", "Cohorts", "overview"),
        labels=f"{REPORT_DIR}/label_availability.tsv",
        labels_html=report_item(f"{REPORT_DIR}/label_availability.html", "Cohorts", "labels"),
        label_issues_html=report_item(f"{REPORT_DIR}/label_issues.html", "Cohorts", "labels"),
        failures_html=report_item(f"{REPORT_DIR}/failures.html", "Cohorts", "failures"),
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
        max_rows=config["report"]["table_max_rows"],
    script:
        "../../scripts/report_cohorts.py"


REPORT_TARGETS.append(str(rules.report_cohorts.output.overview))
