"""Cohort stage: aggregation, ComBat, robustness, nested CV, markers, unsupervised, survival,
external validation.

Modules: `aggregate` (features.tsv, labels.tsv, failures.tsv), `feature_table_cohort`
(precomputed feature CSVs), `harmonise` (ComBatHarmoniser, FrameImputer), `robustness` (ICC),
`models` (pipelines, nested CV, metrics, shuffled-label control), `markers` (per-marker strategies
and outputs), `unsupervised` (PCA/k-means subtypes), `survival` (Cox, KM, log-rank),
`validation` (frozen discovery models on validation cohorts).
"""
