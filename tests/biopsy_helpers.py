"""Synthetic image-localised biopsy cohort for the biopsy tests: sessions written in the results
layout, with EGFR amplification planted by `radiogenomics.demo.biopsy`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.demo.biopsy import TRUTH_COLUMNS, EgfrPlant, plant_egfr_biopsies
from radiogenomics.io import save_nifti, write_json
from radiogenomics.paths import subject_dir

SHAPE = (36, 36, 36)
SPACING = 2.0


def ras_image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """NIfTI with qform = sform = affine."""
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


@dataclass
class SyntheticCohort:
    """Where the sessions are, the biopsy table and the planted truth per subject."""

    root: Path
    cohort: str
    table: pd.DataFrame  # input table (no truth columns)
    truth: pd.DataFrame  # samples with field_value
    fields: dict[str, np.ndarray]  # planted field per subject (prep grid)
    tumour: dict[str, np.ndarray]  # tumour-core mask per subject (where the field is planted)


def write_session(
    sd: Path, images: dict[str, np.ndarray], brain: np.ndarray, labels: np.ndarray, affine
) -> None:
    """prep/{seq}, brain mask, whole-tumour and tumour-core ROIs, the manifests."""
    for seq, data in images.items():
        save_nifti(ras_image(data.astype(np.float32), affine), sd / "prep" / f"{seq}.nii.gz")
    save_nifti(ras_image(brain.astype(np.uint8), affine), sd / "prep" / "brain_mask.nii.gz")
    for roi, mask in (("whole_tumor", labels > 0), ("tumor_core", np.isin(labels, (1, 3)))):
        save_nifti(ras_image(mask.astype(np.uint8), affine), sd / "seg" / "rois" / f"{roi}.nii.gz")
    seqs = {s: f"{s}.nii.gz" for s in images}
    write_json({"sequences": seqs, "reference": "t1ce"}, sd / "prep" / "manifest.json")
    write_json(
        {"sequences": seqs, "reference": "t1ce", "transforms": {}},
        sd / "prep" / "coreg" / "manifest.json",
    )


def build_cohort(
    root: Path,
    n_subjects: int = 20,
    n_amplified: int = 14,
    seed: int = 0,
    plant: EgfrPlant | None = None,
) -> SyntheticCohort:
    """Sessions with a spherical tumour (core + oedema rim) in an ellipsoidal brain; rCBV and
    ADC have subject-level shifts, a smooth nuisance field and voxel noise, and the amplified
    sub-region raises rCBV / lowers ADC as the demo plants it. t1ce carries no EGFR signal."""
    rng = np.random.default_rng(seed)
    cohort = "synth"
    amplified = np.zeros(n_subjects, bool)
    amplified[rng.permutation(n_subjects)[:n_amplified]] = True
    samples, fields, tumours = [], {}, {}
    for s in range(n_subjects):
        subject = f"S{s:02d}"
        affine = np.diag([SPACING, SPACING, SPACING, 1.0])
        affine[:3, 3] = np.array([-35.0, -38.0, -30.0]) + rng.uniform(-5, 5, 3)
        ijk = np.indices(SHAPE).reshape(3, -1).T
        world = nib.affines.apply_affine(affine, ijk).reshape(*SHAPE, 3)
        centre_brain = nib.affines.apply_affine(affine, (np.array(SHAPE) - 1) / 2)
        rel = (world - centre_brain) / np.array([31.0, 33.0, 29.0])
        brain = (rel**2).sum(-1) <= 1.0
        t_centre = centre_brain + rng.uniform(-6, 6, 3)
        radius = rng.uniform(13, 16)
        dist = np.linalg.norm(world - t_centre, axis=-1)
        core = (dist <= radius) & brain
        rim = (dist > radius) & (dist <= radius + 4) & brain
        labels = np.where(core, 3, np.where(rim, 2, 0)).astype(np.uint8)
        tumour = core
        nuisance = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 3.0)
        nuisance /= nuisance.std()
        shift = rng.normal(0, 0.1)
        rcbv = np.where(brain, 1.2, 0.0) * np.exp(0.2 * rng.standard_normal(SHAPE))
        rcbv[core] = (2.0 * np.exp(shift + 0.1 * nuisance + 0.3 * rng.standard_normal(SHAPE)))[core]
        rcbv[rim] = 1.1 * np.exp(0.25 * rng.standard_normal(int(rim.sum())))
        adc = np.where(brain, 800.0, 0.0) + 60 * rng.standard_normal(SHAPE)
        adc[core] = (950 * np.exp(-0.5 * shift) + 120 * rng.standard_normal(SHAPE))[core]
        t1ce = np.where(brain, 1.0, 0.05) + 0.3 * core + 0.1 * rng.standard_normal(SHAPE)
        p = plant_egfr_biopsies(
            labels,
            {"rcbv": rcbv.astype(np.float32), "adc": adc.astype(np.float32)},
            affine,
            rng,
            bool(amplified[s]),
            subject,
            plant=plant or EgfrPlant(),
        )
        sd = subject_dir(cohort, subject, "01", root)
        write_session(sd, {"t1ce": t1ce, **p.maps}, brain, labels, affine)
        samples.append(p.samples)
        fields[subject] = p.field
        tumours[subject] = tumour
    truth = pd.concat(samples, ignore_index=True)
    table = truth.drop(columns=list(TRUTH_COLUMNS))
    return SyntheticCohort(root, cohort, table, truth, fields, tumours)
