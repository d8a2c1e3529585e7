"""Habitats stage: population habitat model, per-subject maps/fractions, spatiotemporal change."""

from radiogenomics.habitats.apply import apply_subject, apply_to_subject, majority_filter
from radiogenomics.habitats.model import (
    NAMED_HABITATS,
    HabitatModel,
    fit_model,
    fit_population,
    load_models,
    load_subject_maps,
    name_habitats,
    sample_subject,
    save_models,
)
from radiogenomics.habitats.spatiotemporal import habitat_changes, run_spatiotemporal

__all__ = [
    "NAMED_HABITATS",
    "HabitatModel",
    "apply_subject",
    "apply_to_subject",
    "fit_model",
    "fit_population",
    "habitat_changes",
    "load_models",
    "load_subject_maps",
    "majority_filter",
    "name_habitats",
    "run_spatiotemporal",
    "sample_subject",
    "save_models",
]
