"""Unsupervised stage: PCA, k-means subtypes (k by silhouette), clustered heatmap vs markers."""

UNS = "results/unsupervised"
UNS_OUTPUTS = {
    "subtypes": f"{UNS}/subtypes.tsv",
    "silhouette": f"{UNS}/silhouette.tsv",
    "variance": f"{UNS}/pca_variance.tsv",
    "association": f"{UNS}/association.tsv",
}
COHORT_TARGETS["unsupervised"] = [
    *UNS_OUTPUTS.values(),
    f"{UNS}/heatmap.png",
    f"{UNS}/pca.png",
]


rule unsupervised_subtypes:
    input:
        features="results/cohort/features.tsv",
        labels="results/cohort/labels.tsv",
        dropped=COH_DROPPED,
    output:
        **UNS_OUTPUTS,
        heatmap=report(
            f"{UNS}/heatmap.png",
            category="Unsupervised",
            labels={"figure": "clustered heatmap with marker annotation"},
        ),
        pca=report(
            f"{UNS}/pca.png",
            category="Unsupervised",
            labels={"figure": "PCA subtypes"},
        ),
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
