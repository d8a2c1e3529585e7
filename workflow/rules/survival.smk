"""Survival stage: out-of-fold Cox risk, C-index, KM + log-rank by risk group and subtype, HRs."""

SURV = "results/survival"
SURV_TABLES = {
    "metrics": f"{SURV}/metrics.tsv",
    "risk": f"{SURV}/risk.tsv",
    "hazard_ratios": f"{SURV}/hazard_ratios.tsv",
}
if COH["survival"]["enabled"]:
    COHORT_TARGETS["survival"] = list(SURV_TABLES.values())
    REPORT_SECTIONS["survival"] = "Survival"


rule survival_analysis:
    input:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
        dropped=COH_DROPPED,
        subtypes="results/unsupervised/subtypes.tsv",
    output:
        **SURV_TABLES,
        km_risk=report_item(
            f"{SURV}/km_risk.png", "Survival", labels={"figure": "KM by OOF risk group"}
        ),
        km_subtype=report_item(
            f"{SURV}/km_subtype.png", "Survival", labels={"figure": "KM by subtype"}
        ),
    log:
        "logs/survival_analysis.log",
    benchmark:
        "benchmarks/rules/survival_analysis.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/survival_analysis.py"
