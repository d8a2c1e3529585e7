"""Biopsy stage: image-localised biopsies ("virtual biopsy") of heterogeneous markers.

Modules: `table` (read and validate a cohort's biopsy table), `coords` (sample coordinates ->
the session's preprocessed grid), `features` (sphere statistics per sample, and the same
statistics for every voxel at once by convolution), `model` (subject-grouped CV, cluster
bootstrap AUC, final model), `probmap` (per-session probability maps of the marker).
Outputs live under `results/biopsy/{marker}/`.
"""
