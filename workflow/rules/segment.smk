"""Segmentation stage (imaging chain): tumour labels, ROI masks, QC figure/metrics, habitat voxels."""

from radiogenomics.paths import roi_paths

# A missing or broken nnU-Net model folder fails at parse time, before any job runs. (Imported
# only then: the segmentation package pulls in nibabel and scipy, ~0.8 s on every Snakemake start.)
if any(c.get("segmentation") == "nnunet" for c in config["cohorts"]):
    from radiogenomics.segmentation import validate_nnunet_model_folder

    validate_nnunet_model_folder(
        config["segmentation"]["nnunet"]["model_folder"],
        config["segmentation"]["nnunet"]["folds"],
        config["segmentation"]["nnunet"]["checkpoint"],
        config["segmentation"]["nnunet"]["channels"],
    )


# ROI masks, QC and the habitat voxel sample come from the same job: they need only the labels and
# the imaging chain's outputs, and a job of their own would cost a Python start-up and a DAG node
# per session.
rule segment_tumor:
    input:
        prep=f"{SD}/prep/manifest.json",
        brain=str(PREP_PATHS["brain_mask"]),
        anat=provided_labels_input,
        coreg=f"{SD}/prep/coreg/manifest.json",
        similarity=f"{SD}/prep/coreg/similarity.tsv",
    output:
        # The layout extract_features finds them by (radiogenomics.paths.roi_paths).
        **{roi: str(path) for roi, path in roi_paths(SD).items()},
        labels=f"{SD}/seg/tumor_labels.nii.gz",
        meta=f"{SD}/seg/tumor_labels.json",
        overlay=report(
            f"{SD}/qc/overlay.png",
            category="QC",
            subcategory="{cohort}",
            labels={"subject": "{subject}", "session": "{session}"},
        ),
        metrics=f"{SD}/qc/metrics.tsv",
        # Bounded sample of the habitat ROI's voxels: input of the population habitat model.
        voxel_sample=f"{SD}/habitats/voxel_sample.npz",
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
        # Per-cohort values and the run seed as plain params; the script picks by its wildcards.
        methods={
            name: cohort.get("segmentation", "automated")
            for name, cohort in COHORTS.items()
        },
        label_conventions={
            name: cohort.get("label_convention", "brats")
            for name, cohort in COHORTS.items()
        },
        config=config["segmentation"],
        rings_mm=config["segmentation"]["rois"]["peritumoral_rings_mm"],
        qc_ranges=config["preprocess"]["qc"],
        habitats=config["habitats"],
        seed=config["seed"],
    script:
        "../../scripts/segment_tumor.py"
