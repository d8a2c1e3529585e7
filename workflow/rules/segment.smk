"""Segmentation stage (imaging chain): tumour labels and the seven ROI masks per subject/session."""

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
        # ROI masks are derived in the same job: they need only the labels and the brain mask.
        **{roi: f"{SD}/seg/rois/{roi}.nii.gz" for roi in ROIS},
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
    # One thread: the mixtures gain nothing from a second one (3.3 s either way on the demo).
    threads: 1
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
        rings_mm=config["segmentation"]["rois"]["peritumoral_rings_mm"],
    script:
        "../../scripts/segment_tumor.py"
