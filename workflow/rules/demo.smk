"""Demo stage (foundation): synthetic two-site cohort with planted truth, built on first run."""

DEMO_ROOT = config["demo"]["root"]

# Peak memory grows with the voxel count (1 mm has eight times the voxels of 2 mm).
DEMO_MEM_MB = 1500 if float(config["demo"]["resolution_mm"]) >= 2 else 4000


rule generate_demo_subject:
    output:
        flag=f"{DEMO_ROOT}/.done/{{cohort}}/{{subject}}.done",
    log:
        "logs/generate_demo_subject/{cohort}_{subject}.log",
    benchmark:
        "benchmarks/rules/generate_demo_subject/{cohort}_{subject}.tsv"
    wildcard_constraints:
        cohort="demo_[ab]",
        subject="[AB][0-9]{3}",
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=DEMO_MEM_MB,
        runtime=15,
    params:
        demo=config["demo"],
        seed=config["seed"],
    script:
        "../../scripts/generate_demo_subject.py"


rule write_demo_tables:
    output:
        labels_a=f"{DEMO_ROOT}/labels/demo_a.tsv",
        labels_b=f"{DEMO_ROOT}/labels/demo_b.tsv",
        planted=f"{DEMO_ROOT}/truth/planted.tsv",
        phi=f"{DEMO_ROOT}/truth/phi_strings.txt",
        readme=f"{DEMO_ROOT}/truth/README.md",
    log:
        "logs/write_demo_tables.log",
    benchmark:
        "benchmarks/rules/write_demo_tables.tsv"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        demo=config["demo"],
        seed=config["seed"],
    script:
        "../../scripts/generate_demo_tables.py"


# The demo's image-localised biopsy table of one cohort (samples are drawn in the rendered
# tumours, so it waits for every subject of the cohort; truth stays under truth/).
rule write_demo_biopsies:
    input:
        flags=lambda wc: subject_flags(wc.cohort),
    output:
        table=f"{DEMO_ROOT}/biopsies/{{cohort}}.tsv",
    log:
        "logs/write_demo_biopsies/{cohort}.log",
    benchmark:
        "benchmarks/rules/write_demo_biopsies/{cohort}.tsv"
    wildcard_constraints:
        cohort="demo_[ab]",
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        root=lambda w, output: Path(output.table).parents[1],
        subjects=lambda wc: sorted(set(SUBJECTS.loc[SUBJECTS["cohort"] == wc.cohort, "subject"])),
    script:
        "../../scripts/write_demo_biopsies.py"
