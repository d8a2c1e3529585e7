"""Biopsy stage (virtual biopsy): sphere features around image-localised samples, sample-level
models with subject-grouped CV on discovery cohorts, per-session probability maps."""

BX = config["biopsy"]
BX_TABLES = {c["name"]: c["biopsies"] for c in config["cohorts"] if c.get("biopsies")}
BX_ROLES = {name: COHORTS[name]["role"] for name in BX_TABLES}
BX_DIR = "results/biopsy"
# Every imaged session gets a map (cohorts without a biopsy table too).
BX_SESSIONS = SUBJECTS[["cohort", "subject", "session"]].to_dict("records")

if BX_TABLES:
    COHORT_TARGETS["biopsy"] = [
        *(f"{BX_DIR}/{m}/metrics.tsv" for m in BX["markers"]),
        *(f"{BX_DIR}/{m}/maps.tsv" for m in BX["markers"]),
    ]
    REPORT_SECTIONS["biopsy"] = "Biopsy"


rule biopsy_features:
    input:
        tables=list(BX_TABLES.values()),
        sessions=[
            p
            for c in BX_TABLES
            for p in subject_paths(f"{SD}/habitats/habitat_fractions.tsv", cohort=c)
        ],
    output:
        features=f"{BX_DIR}/features.tsv",
        failures=f"{BX_DIR}/failures.tsv",
    log:
        "logs/biopsy_features.log",
    benchmark:
        "benchmarks/rules/biopsy_features.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        tables=BX_TABLES,
        roles=BX_ROLES,
        sessions=BX_SESSIONS,
        settings=BX,
    script:
        "../../scripts/biopsy_features.py"


rule biopsy_model:
    input:
        features=f"{BX_DIR}/features.tsv",
    output:
        metrics=f"{BX_DIR}/{{marker}}/metrics.tsv",
        predictions=f"{BX_DIR}/{{marker}}/predictions.tsv",
        coefficients=f"{BX_DIR}/{{marker}}/coefficients.tsv",
        model=f"{BX_DIR}/{{marker}}/model.joblib",
        roc=report_item(
            f"{BX_DIR}/{{marker}}/roc.png",
            "Biopsy",
            "{marker}",
            labels={"marker": "{marker}", "figure": "sample-level ROC"},
            caption="biopsy_roc",
        ),
    log:
        "logs/biopsy_model/{marker}.log",
    benchmark:
        "benchmarks/rules/biopsy_model/{marker}.tsv"
    # As long as a marker's summary (its 200 permutations): start it before the reports.
    priority: 10
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=BX,
        seed=config["seed"],
    script:
        "../../scripts/biopsy_model.py"


rule biopsy_maps:
    input:
        model=f"{BX_DIR}/{{marker}}/model.joblib",
        sessions=subject_paths(f"{SD}/habitats/habitat_fractions.tsv"),
    output:
        table=f"{BX_DIR}/{{marker}}/maps.tsv",
        maps=directory(f"{BX_DIR}/{{marker}}/maps"),
        overlays=report_item(
            directory(f"{BX_DIR}/{{marker}}/overlays"),
            "Biopsy",
            "{marker}",
            patterns=["{name}.png"],
            labels={"marker": "{marker}", "figure": "probability map {name}"},
            caption="biopsy_map",
        ),
    log:
        "logs/biopsy_maps/{marker}.log",
    benchmark:
        "benchmarks/rules/biopsy_maps/{marker}.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        sessions=BX_SESSIONS,
        settings=BX,
        n_overlays=config["report"]["max_overlays"],
    script:
        "../../scripts/biopsy_maps.py"
