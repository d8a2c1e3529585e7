"""Segmentation stage (imaging chain): tumour labels per subject/session, then the seven ROI masks."""

from radiogenomics.paths import ROIS, subject_seed
from radiogenomics.segmentation import segment_rule_inputs, validate_nnunet_model_folder

# A missing or broken nnU-Net model folder fails at parse time, before any job runs.
if any(c.get("segmentation") == "nnunet" for c in config["cohorts"]):
    validate_nnunet_model_folder(
        config["segmentation"]["nnunet"]["model_folder"],
        config["segmentation"]["nnunet"]["folds"],
        config["segmentation"]["nnunet"]["checkpoint"],
        config["segmentation"]["nnunet"]["channels"],
    )


rule segment_tumor:
    input:
        unpack(
            lambda wc: segment_rule_inputs(
                SD, wc, cohort_config(wc.cohort).get("segmentation", "automated")
            )
        ),
    output:
        labels=f"{SD}/seg/tumor_labels.nii.gz",
        meta=f"{SD}/seg/tumor_labels.json",
    log:
        "logs/segment_tumor/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/segment_tumor/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        method=lambda wc: cohort_config(wc.cohort).get("segmentation", "automated"),
        label_convention=lambda wc: cohort_config(wc.cohort).get(
            "label_convention", "brats"
        ),
        config=config["segmentation"],
        seed=lambda wc: subject_seed(config["seed"], wc.cohort, wc.subject, wc.session),
    script:
        "../../scripts/segment_tumor.py"


rule derive_rois:
    input:
        labels=f"{SD}/seg/tumor_labels.nii.gz",
        brain=f"{SD}/prep/brain_mask.nii.gz",
    output:
        **{roi: f"{SD}/seg/rois/{roi}.nii.gz" for roi in ROIS},
    log:
        "logs/derive_rois/{cohort}_{subject}_{session}.log",
    benchmark:
        "benchmarks/rules/derive_rois/{cohort}_{subject}_{session}.tsv"
    group:
        "subject"
    conda:
        "../../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        rings_mm=config["segmentation"]["rois"]["peritumoral_rings_mm"],
    script:
        "../../scripts/derive_rois.py"
