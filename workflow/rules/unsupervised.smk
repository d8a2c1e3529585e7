"""Unsupervised stage: PCA, k-means subtypes (k by silhouette), clustered heatmap vs markers."""

UNS = "results/unsupervised"
UNS_OUTPUTS = {
    "subtypes": f"{UNS}/subtypes.tsv",
    "silhouette": f"{UNS}/silhouette.tsv",
    "variance": f"{UNS}/pca_variance.tsv",
    "association": f"{UNS}/association.tsv",
}
COHORT_TARGETS["unsupervised"] = list(UNS_OUTPUTS.values())
REPORT_SECTIONS["unsupervised"] = "Unsupervised"


rule unsupervised_subtypes:
    input:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
        dropped=COH_DROPPED,
    output:
        **UNS_OUTPUTS,
        heatmap=report_item(f"{UNS}/heatmap.png", "Unsupervised", labels={"figure": "heatmap"}),
        pca=report_item(f"{UNS}/pca.png", "Unsupervised", labels={"figure": "PCA subtypes"}),
    log:
        "logs/unsupervised_subtypes.log",
    benchmark:
        "benchmarks/rules/unsupervised_subtypes.tsv"
    conda:
        "../../envs/modelling.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=COH_SETTINGS,
    script:
        "../../scripts/unsupervised_subtypes.py"
