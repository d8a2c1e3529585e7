"""QC stage (imaging chain): per-subject overlay figure and metrics table with range flags."""


rule qc_subject:
    input:
        prep=f"{SD}/prep/manifest.json",
        coreg=f"{SD}/prep/coreg/manifest.json",
        similarity=f"{SD}/prep/coreg/similarity.tsv",
        mask=f"{SD}/prep/brain_mask.nii.gz",
        labels=f"{SD}/seg/tumor_labels.nii.gz",
    output:
        overlay=report(
            f"{SD}/qc/overlay.png",
            category="QC",
            subcategory="{cohort}",
            labels={"subject": "{subject}", "session": "{session}"},
        ),
        metrics=f"{SD}/qc/metrics.tsv",
    log:
        "logs/qc_subject/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/qc_subject/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        ranges=config["preprocess"]["qc"],
    script:
        "../../scripts/qc_subject.py"
