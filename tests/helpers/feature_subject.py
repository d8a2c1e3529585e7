"""Test helpers (features stage): a tiny synthetic subject with seven ROIs, sequences and maps."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.paths import ROIS

AFF = np.diag([2.0, 2.0, 2.0, 1.0])


SHAPE = (24, 24, 24)


def save_image(arr, path, affine=AFF):
    nib.save(nib.Nifti1Image(np.asarray(arr), affine), str(path))


def make_subject(root: Path, maps=("adc",), seed=0) -> Path:
    """Tiny synthetic subject: brain ball, tumour ball, seven ROIs, t1/t2/flair + maps."""
    rng = np.random.default_rng(seed)
    sd = root / "results" / "demo" / "sub-S1" / "ses-01"
    (sd / "prep").mkdir(parents=True)
    (sd / "seg" / "rois").mkdir(parents=True)
    g = np.indices(SHAPE).astype(float)
    r_brain = np.sqrt(((g - 11.5) ** 2).sum(0))
    r_tum = np.sqrt(((g - np.array([14, 12, 12])[:, None, None, None]) ** 2).sum(0))
    brain = r_brain < 11
    whole = r_tum < 5
    core = r_tum < 3
    enh = core & (r_tum >= 2)
    rois = {
        "whole_tumor": whole,
        "tumor_core": core,
        "enhancing": enh,
        "necrosis": core & ~enh,
        "edema": whole & ~core,
        "peritumoral_near": (r_tum >= 5) & (r_tum < 7) & brain,
        "peritumoral_far": (r_tum >= 7) & (r_tum < 9) & brain,
    }
    for roi, m in rois.items():
        save_image(m.astype(np.uint8), sd / "seg" / "rois" / f"{roi}.nii.gz")
    save_image(brain.astype(np.uint8), sd / "prep" / "brain_mask.nii.gz")
    seqs = {}
    for i, seq in enumerate(("t1", "t1ce", "t2", "flair") + tuple(maps)):
        arr = np.where(brain, rng.normal(0, 1, SHAPE) + (i + 1) * whole, 0).astype(np.float32)
        save_image(arr, sd / "prep" / f"{seq}.nii.gz")
        seqs[seq] = f"{seq}.nii.gz"
    missing = {m: "not acquired" for m in ("adc", "rcbv") if m not in maps}
    (sd / "prep" / "manifest.json").write_text(json.dumps({"sequences": seqs, "missing": missing}))
    return sd


def roi_paths(sd: Path) -> dict[str, Path]:
    return {r: sd / "seg" / "rois" / f"{r}.nii.gz" for r in ROIS}
