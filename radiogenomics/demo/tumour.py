"""Demo cohort generator (foundation stage): tumour geometry, BraTS labels and habitats.

The core (necrosis + enhancing or non-enhancing tumour) is a perturbed ellipsoid; oedema spreads
further along white matter. Inside the core, voxels are split into three spatially smooth habitats
whose voxel fractions equal the planned ones (ranked smooth scores, so the truth is exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radiogenomics.demo.anatomy import Anatomy, rotation_matrix, smooth_field

NECROSIS, EDEMA, ENHANCING = 1, 2, 3
HYPERVASCULAR, HYPOVASCULAR, NONVIABLE = 1, 2, 3
HABITAT_NAMES = {
    HYPERVASCULAR: "hypervascular_cellular",
    HYPOVASCULAR: "hypovascular_cellular",
    NONVIABLE: "nonviable",
}


@dataclass
class Tumour:
    """Truth-grid tumour maps: BraTS labels, habitats, necrosis mask and normalised radius."""

    labels: np.ndarray  # uint8 0/1/2/3
    habitat: np.ndarray  # uint8 0/1/2/3
    necrosis: np.ndarray  # bool, true necrosis (inside label 1 and habitat 3)
    rho: np.ndarray  # float32 normalised radial distance (1 = core boundary)
    centre_world: np.ndarray


def _take_ranked(score: np.ndarray, candidates: np.ndarray, n: int, largest: bool) -> np.ndarray:
    """Boolean mask of the n candidate voxels with the largest (or smallest) score."""
    idx = np.flatnonzero(candidates)
    out = np.zeros(candidates.shape, dtype=bool)
    n = int(np.clip(n, 0, len(idx)))
    if n == 0:
        return out
    order = np.argsort(score.ravel()[idx], kind="stable")
    chosen = idx[order[-n:]] if largest else idx[order[:n]]
    out.ravel()[chosen] = True
    return out


def _box(shape, affine: np.ndarray, centre: np.ndarray, radius_mm: float) -> tuple[slice, ...]:
    """Voxel bounding box around a world point."""
    c = np.linalg.inv(affine) @ np.append(centre, 1.0)
    r = radius_mm / np.abs(np.diag(affine)[:3])
    lo = np.maximum(np.floor(c[:3] - r).astype(int), 0)
    hi = np.minimum(np.ceil(c[:3] + r).astype(int) + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def build_tumour(row: dict, anat: Anatomy, rng: np.random.Generator) -> Tumour:
    """Paint the tumour of one session (geometry from the plan row, texture from `rng`)."""
    res = float(abs(anat.affine[0, 0]))
    centre = (
        anat.mni_to_subject @ np.array([row["centre_x"], row["centre_y"], row["centre_z"], 1.0])
    )[:3]
    radius = float(row["radius_mm"])
    axes = radius * np.array([row["elong_x"], row["elong_y"], row["elong_z"]])
    box = _box(anat.shape, anat.affine, centre, axes.max() * 1.4 + float(row["edema_mm"]) + 6)
    bshape = tuple(s.stop - s.start for s in box)
    ijk = np.indices(bshape, dtype=np.float32).reshape(3, -1)
    ijk += np.array([s.start for s in box], dtype=np.float32)[:, None]
    world = anat.affine[:3, :3] @ ijk + anat.affine[:3, 3:4] - centre[:, None]
    # Orientation of the ellipsoid is fixed per subject (from the plan), shape noise per session.
    orient = rotation_matrix(np.asarray([row["elong_x"], row["elong_y"], row["elong_z"]]) * 60.0)
    local = orient.T @ world
    rho = np.sqrt(((local / axes[:, None]) ** 2).sum(0)).reshape(bshape)
    scale = max(6.0 / res, 2.0)
    rho = rho + 0.09 * smooth_field(bshape, rng, scale)

    wm = anat.fractions["wm"][box]
    tissue = wm + anat.fractions["gm"][box]
    brain = anat.brain_mask[box]
    core = (rho < 1.0) & brain & ((tissue > 0.35) | (rho < 0.75))
    # Oedema follows white matter: it reaches further where the WM fraction is high.
    reach = 1.0 + float(row["edema_mm"]) / radius * (0.2 + 0.8 * np.clip(wm, 0, 1))
    reach = reach + 0.12 * smooth_field(bshape, rng, scale)
    edema = ~core & brain & (tissue > 0.5) & (rho < reach)

    n_core = int(core.sum())
    necrosis = _take_ranked(
        rho + 0.08 * smooth_field(bshape, rng, scale),
        core,
        round(float(row["necrosis_frac"]) * n_core),
        largest=False,
    )
    viable = core & ~necrosis
    # Habitats are blobs a few voxels wide (smooth field), the hypervascular one leaning to the rim.
    blob = max(8.0 / res, 2.5)
    hyper = _take_ranked(
        0.5 * rho + smooth_field(bshape, rng, blob),
        viable,
        round(float(row["frac_hypervascular"]) * n_core),
        largest=True,
    )
    n_nv = round(float(row["frac_nonviable"]) * n_core) - int(necrosis.sum())
    nonviable = (
        _take_ranked(
            0.5 * rho + smooth_field(bshape, rng, blob), viable & ~hyper, n_nv, largest=False
        )
        | necrosis
    )
    hypo = viable & ~hyper & ~nonviable

    labels_b = np.zeros(bshape, np.uint8)
    labels_b[edema] = EDEMA
    labels_b[core] = ENHANCING if row["enhancing"] else NECROSIS
    labels_b[necrosis] = NECROSIS
    hab_b = np.zeros(bshape, np.uint8)
    hab_b[hyper], hab_b[hypo], hab_b[nonviable] = HYPERVASCULAR, HYPOVASCULAR, NONVIABLE

    labels = np.zeros(anat.shape, np.uint8)
    habitat = np.zeros(anat.shape, np.uint8)
    nec = np.zeros(anat.shape, bool)
    rho_full = np.full(anat.shape, 9.0, np.float32)
    labels[box], habitat[box], nec[box], rho_full[box] = labels_b, hab_b, necrosis, rho
    return Tumour(labels, habitat, nec, rho_full, centre)


def habitat_fractions(tum: Tumour, voxel_ml: float) -> dict[str, float]:
    """Realised habitat fractions of the tumour core plus label volumes (ml)."""
    core = (tum.labels == NECROSIS) | (tum.labels == ENHANCING)
    n = int(core.sum())
    out: dict[str, float] = {"core_voxels": n, "core_ml": n * voxel_ml}
    for code, name in HABITAT_NAMES.items():
        out[f"frac_{name}"] = float((tum.habitat == code).sum() / n) if n else float("nan")
    out["necrosis_ml"] = float(tum.necrosis.sum() * voxel_ml)
    for code, name in ((NECROSIS, "label1"), (EDEMA, "label2"), (ENHANCING, "label3")):
        out[f"{name}_ml"] = float((tum.labels == code).sum() * voxel_ml)
    out["whole_tumor_ml"] = float((tum.labels > 0).sum() * voxel_ml)
    return out


def smooth_noise(shape, rng: np.random.Generator, sigma_vox: float = 0.7) -> np.ndarray:
    """Unit-sd voxel noise with a little spatial correlation (tissue texture, not white noise)."""
    z = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return z / (z.std() + 1e-9)
