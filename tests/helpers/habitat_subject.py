"""Test helpers (habitats stage): synthetic subjects with known habitat fractions.

The generator writes what the habitat rules read (``prep/manifest.json``, ``prep/{seq}.nii.gz``,
``prep/brain_mask.nii.gz``, ``seg/rois/{tumor_core,whole_tumor}.nii.gz``) for a brain with WM,
GM, CSF, oedema and a tumour core made of smooth habitat patches of chosen fractions. ADC is in
physical units with a per-subject scanner gain (so NAWM normalisation matters); rCBV is already a
ratio to WM, as preprocessing delivers it.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.habitats.model import NAMED_HABITATS
from radiogenomics.paths import subject_dir

# nADC and rCBV (ratios to NAWM) of each habitat: the review's semantics.
HABITAT_VALUES = {
    "hypervascular_cellular": (0.95, 4.0),
    "hypovascular_cellular": (1.0, 0.9),
    "nonviable": (2.3, 0.45),
}


TISSUE = {  # t1, t1ce, flair, nadc, rcbv
    "wm": (1.0, 1.0, 0.8, 1.0, 1.0),
    "gm": (0.7, 0.75, 1.0, 1.15, 2.0),
    "csf": (0.25, 0.25, 0.15, 4.0, 0.3),
    "edema": (0.6, 0.6, 1.7, 1.6, 1.1),
}


WM_ADC = 0.75e-3  # mm^2/s


def grid_affine(zoom: float) -> np.ndarray:
    aff = np.diag([zoom, zoom, zoom, 1.0])
    aff[:3, 3] = [-90.0, -100.0, -60.0]
    return aff


def save_image(data: np.ndarray, aff: np.ndarray, path: Path, dtype=np.float32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    nib.save(img, str(path))


def habitat_labels(
    core: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator, sigma: float
) -> np.ndarray:
    """Smooth patches inside `core` with codes 1..3 in the given fractions (0 outside)."""
    box = ndimage.find_objects(core.astype(np.uint8))[0]
    f1 = np.zeros(core.shape)
    f2 = np.zeros(core.shape)
    shape = tuple(s.stop - s.start for s in box)
    f1[box] = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    f2[box] = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    idx = np.flatnonzero(core)
    n = idx.size
    n_hyper, _, n_nonv = (int(round(f * n)) for f in fractions)
    labels = np.zeros(core.shape, np.uint8)
    order_nv = idx[np.argsort(-f1.ravel()[idx], kind="stable")]
    labels.flat[order_nv[:n_nonv]] = 3
    rest = order_nv[n_nonv:]
    order_h = rest[np.argsort(-f2.ravel()[rest], kind="stable")]
    labels.flat[order_h[:n_hyper]] = 1
    labels.flat[order_h[n_hyper:]] = 2
    return labels


def make_subject(
    root: Path,
    cohort: str,
    subject: str,
    session: str,
    fractions: tuple[float, float, float],
    seed: int,
    shape: tuple[int, int, int] = (48, 48, 40),
    zoom: float = 2.0,
    core_radius_mm: float = 16.0,
    sequences: tuple[str, ...] = ("t1", "t1ce", "t2", "flair", "adc", "rcbv"),
    noise: float = 0.12,
) -> dict:
    """Write one synthetic subject/session; return truth (codes, fractions, volumes in ml)."""
    rng = np.random.default_rng(seed)
    sd = subject_dir(cohort, subject, session, root=root / "results")
    aff = grid_affine(zoom)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(
        float
    )
    centre = (np.array(shape) - 1) / 2
    rel = (grid - centre) / (np.array(shape) / 2 * 0.9)
    r_brain = np.sqrt((rel**2).sum(-1))
    brain = r_brain <= 1.0
    wm = r_brain <= 0.75  # WM ~40 % of the brain volume, as in adults
    gm = brain & ~wm
    vent = (((grid - centre) / np.array([3, 6, 4])) ** 2).sum(-1) <= 1.0
    wm &= ~vent
    tc = centre + np.array([shape[0] * 0.22, 0, 0])
    dist_mm = np.sqrt((((grid - tc) * zoom) ** 2).sum(-1))
    core = dist_mm <= core_radius_mm
    whole = dist_mm <= core_radius_mm + 8.0
    edema = whole & ~core
    labels = habitat_labels(core, fractions, rng, sigma=2.5)
    seqs = {k: np.zeros(shape, np.float32) for k in ("t1", "t1ce", "flair", "nadc", "rcbv")}
    for tissue, m in (("wm", wm), ("gm", gm), ("csf", vent), ("edema", edema)):
        for key, val in zip(("t1", "t1ce", "flair", "nadc", "rcbv"), TISSUE[tissue], strict=True):
            seqs[key][m] = val
    for code, name in enumerate(NAMED_HABITATS, start=1):
        m = labels == code
        seqs["nadc"][m], seqs["rcbv"][m] = HABITAT_VALUES[name]
        seqs["t1ce"][m] = {1: 1.6, 2: 1.1, 3: 0.4}[code]
        seqs["t1"][m] = 0.6
        seqs["flair"][m] = {1: 1.3, 2: 1.2, 3: 1.5}[code]
    for key in seqs:
        seqs[key] = np.where(brain, seqs[key] * np.exp(noise * rng.standard_normal(shape)), 0)
    gain = float(
        rng.uniform(0.8, 1.25)
    )  # per-scanner ADC calibration, removed by NAWM normalisation
    out = {
        "t1": seqs["t1"] * 800,
        "t1ce": seqs["t1ce"] * 900,
        "t2": np.where(brain, 1.0 + seqs["nadc"], 0) * 500,
        "flair": seqs["flair"] * 700,
        "adc": seqs["nadc"] * WM_ADC * gain,
        "rcbv": seqs["rcbv"],
    }
    (sd / "prep").mkdir(parents=True, exist_ok=True)
    present = {}
    for s in sequences:
        save_image(out[s], aff, sd / "prep" / f"{s}.nii.gz")
        present[s] = f"{s}.nii.gz"
    missing = {s: "not acquired" for s in ("adc", "rcbv") if s not in sequences}
    manifest = {
        "cohort": cohort,
        "subject": subject,
        "session": session,
        "sequences": present,
        "missing": missing,
    }
    (sd / "prep" / "manifest.json").write_text(json.dumps(manifest))
    save_image(brain, aff, sd / "prep" / "brain_mask.nii.gz", np.uint8)
    save_image(core, aff, sd / "seg" / "rois" / "tumor_core.nii.gz", np.uint8)
    save_image(whole, aff, sd / "seg" / "rois" / "whole_tumor.nii.gz", np.uint8)
    voxel_ml = zoom**3 / 1000
    n_core = int(core.sum())
    truth = {"sd": sd, "labels": labels, "gain": gain, "affine": aff}
    for code, name in enumerate(NAMED_HABITATS, start=1):
        cnt = int((labels == code).sum())
        truth[f"{name}__fraction"] = cnt / n_core
        truth[f"{name}__volume_ml"] = cnt * voxel_ml
    return truth


def subject_paths(sd: Path) -> dict[str, Path]:
    """Inputs of the habitat rules for one synthetic subject directory."""
    return {
        "manifest": sd / "prep" / "manifest.json",
        "roi": sd / "seg" / "rois" / "tumor_core.nii.gz",
        "whole_tumor": sd / "seg" / "rois" / "whole_tumor.nii.gz",
        "brain_mask": sd / "prep" / "brain_mask.nii.gz",
    }


def random_fractions(rng: np.random.Generator) -> tuple[float, float, float]:
    """Habitat fractions spread widely between subjects (Dirichlet(2, 2, 2))."""
    return tuple(float(v) for v in rng.dirichlet([2.0, 2.0, 2.0]))
