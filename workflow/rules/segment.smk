"""Segmentation stage (imaging chain): tumour labels, ROI masks, QC figure/metrics, habitat voxels."""

from radiogenomics.paths import roi_paths

NNUNET = config["segmentation"]["nnunet"]
# A missing or broken nnU-Net model folder fails at parse time, before any job runs. (Imported
# only then: the segmentation package is slow to import on every Snakemake start.)
if any(c["segmentation"] == "nnunet" for c in config["cohorts"]):
    from radiogenomics.segmentation import validate_nnunet_model_folder

    validate_nnunet_model_folder(
        NNUNET["model_folder"],
        NNUNET["folds"],
        NNUNET["checkpoint"],
        NNUNET["channels"],
    )

SEG_SETTINGS = {
    "methods": per_cohort("segmentation"),
    "label_conventions": per_cohort("label_convention"),
    "segmentation": config["segmentation"],
    "rings_mm": config["segmentation"]["rois"]["peritumoral_rings_mm"],
    "qc_ranges": config["preprocess"]["qc"],
    "habitats": config["habitats"],
    "seed": config["seed"],
}


# ROIs, QC and the habitat voxel sample share the job (radiogenomics.jobs.segment_tumor).
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
        overlay=f"{SD}/qc/overlay.png",
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
    # One thread: the mixtures gain nothing from a second one.
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        settings=SEG_SETTINGS,
    script:
        "../../scripts/segment_tumor.py"


# Report: QC metrics of every session with outliers flagged, and a capped set of overlays (outliers
# first). The overlays come from the same jobs as the metrics, so they are params, not inputs.
rule report_qc:
    input:
        metrics=subject_paths(f"{SD}/qc/metrics.tsv"),
    output:
        table=f"{REPORT_DIR}/qc_metrics.tsv",
        table_html=report_item(f"{REPORT_DIR}/qc_metrics.html", "QC", "metrics"),
        figure=report_item(f"{REPORT_DIR}/qc_metrics.png", "QC", "metrics"),
        overlays=report_item(
            directory(f"{REPORT_DIR}/qc_overlays"),
            "QC",
            "overlays",
            patterns=["{name}.png"],
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
        overlays=subject_paths(f"{SD}/qc/overlay.png"),
        outlier_z=config["report"]["outlier_z"],
        max_overlays=config["report"]["max_overlays"],
    script:
        "../../scripts/report_qc.py"


REPORT_TARGETS.append(str(rules.report_qc.output.table))
