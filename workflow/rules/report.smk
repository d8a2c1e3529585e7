"""Report stage: what `snakemake --report results/report.html` collects.

Each stage registers its items next to its rules (common.smk: `report_item`, `REPORT_SECTIONS`,
`REPORT_TARGETS`); this file only adds the generic pieces: every registered stage's tables
rendered for its category, and the Run category.
"""


report: "../report/workflow.rst"


rule report_section:
    input:
        lambda wc: COHORT_TARGETS[wc.section],
    output:
        folder=report_item(
            directory(f"{REPORT_DIR}/{{section}}"),
            lambda wc: REPORT_SECTIONS[wc.section],
            "{group}",
            patterns=["{group}/{name}.html", "{group}/{name}.png"],
            labels={"item": "{name}"},
            caption="section",
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
        # Example per-subject habitat overlays beside the population tables.
        overlays=lambda wc: (
            subject_paths(f"{SD}/habitats/overlay.png") if wc.section == "habitats" else []
        ),
        max_overlays=config["report"]["max_overlays"],
        max_rows=config["report"]["table_max_rows"],
    script:
        "../../scripts/report_section.py"


rule report_run:
    input:
        # Every stage's results: runtimes and memory are read once the run's work is done.
        stage_results(),
    output:
        benchmarks=f"{REPORT_DIR}/run_benchmarks.tsv",
        benchmarks_html=report_item(
            f"{REPORT_DIR}/run_benchmarks.html", "Run", "runtime and memory"
        ),
        benchmarks_figure=report_item(
            f"{REPORT_DIR}/run_benchmarks.png", "Run", "runtime and memory"
        ),
        versions=f"{REPORT_DIR}/software_versions.tsv",
        versions_html=report_item(f"{REPORT_DIR}/software_versions.html", "Run", "software"),
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


REPORT_TARGETS.extend(
    [
        *expand(f"{REPORT_DIR}/{{section}}", section=list(REPORT_SECTIONS)),
        str(rules.report_run.output.benchmarks),
    ]
)
