"""Imaging chain (preprocessing): reorient, N4, co-registration, HD-BET, atlas, normalisation."""

from radiogenomics.imaging.atlas import atlas_subject, subject_to_mni_points
from radiogenomics.imaging.bias import bias_correct_subject
from radiogenomics.imaging.coregister import RigidSettings, coregister_subject
from radiogenomics.imaging.normalise import normalise_subject
from radiogenomics.imaging.qc import qc_subject
from radiogenomics.imaging.skullstrip import skullstrip_subject

__all__ = [
    "RigidSettings",
    "atlas_subject",
    "bias_correct_subject",
    "coregister_subject",
    "normalise_subject",
    "qc_subject",
    "skullstrip_subject",
    "subject_to_mni_points",
]
