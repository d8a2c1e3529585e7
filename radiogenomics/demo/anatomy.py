"""Demo cohort generator (foundation stage): whole-head anatomy on the truth grid.

nilearn ships the MNI152 (2009a sym) T1 template and GM/WM maps, but the T1 is brain-only.
We warp the maps per subject (scaling, rotation, shift) onto the scanner grid and wrap the brain in
CSF, skull (inner table, diploe, outer table), galea, scalp fat and skin shells whose thickness
varies smoothly, so skull stripping matters and a CNN trained on real heads still sees a head.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.templates import mni152_path

# Tissue classes whose fractions make up every normal voxel (tumour is painted on top).
TISSUES = ("wm", "gm", "csf", "bone", "marrow", "galea", "fat", "skin")

# Scanner field of view in MNI-like mm: head plus shells, brainstem cut at the bottom.
FOV_MIN = np.array([-98.0, -134.0, -72.0])
FOV_MAX = np.array([98.0, 98.0, 112.0])
SITE_ORIGIN_SHIFT = {"demo_a": np.zeros(3), "demo_b": np.array([0.0, 12.0, -18.0])}
HEAD_CENTRE_MNI = np.array([0.0, -18.0, 10.0])


@dataclass(frozen=True)
class Template:
    """MNI152 maps on their 1 mm grid: T1 (0-255), GM and WM probabilities, voxel-to-mm affine."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Load the nilearn MNI152 T1/GM/WM maps (cached per process)."""
    imgs = {k: nib.load(mni152_path(k)) for k in ("t1", "gm", "wm")}
    arr = {k: np.asarray(v.dataobj, dtype=np.float32) for k, v in imgs.items()}
    return Template(
        t1=arr["t1"], gm=arr["gm"] / 255.0, wm=arr["wm"] / 255.0, affine=imgs["t1"].affine.copy()
    )


def truth_grid(cohort: str, resolution_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine of the scanner (= t1ce = truth) grid of a cohort."""
    res = float(resolution_mm)
    shape = tuple(int(np.floor((FOV_MAX[i] - FOV_MIN[i]) / res)) + 1 for i in range(3))
    affine = np.diag([res, res, res, 1.0])
    affine[:3, 3] = FOV_MIN + SITE_ORIGIN_SHIFT.get(cohort, np.zeros(3))
    return shape, affine


def rotation_matrix(deg: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """3x3 rotation from angles (degrees) about x, y then z."""
    rx, ry, rz = np.deg2rad(np.asarray(deg, dtype=float))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def mni_to_subject(row: dict, cohort: str) -> np.ndarray:
    """4x4 map from template mm to subject scanner mm (head size, yaw, position, site origin)."""
    m = np.eye(4)
    scale = np.diag([row["anat_scale_x"], row["anat_scale_y"], row["anat_scale_z"]])
    m[:3, :3] = rotation_matrix((0.0, 0.0, row["anat_rot_deg"])) @ scale
    shift = np.array([row["anat_shift_x"], row["anat_shift_y"], row["anat_shift_z"]])
    # Rotate and scale about the head centre so the head stays inside the field of view.
    m[:3, 3] = HEAD_CENTRE_MNI - m[:3, :3] @ HEAD_CENTRE_MNI + shift
    m[:3, 3] += SITE_ORIGIN_SHIFT.get(cohort, np.zeros(3))
    return m


def resample_affine(
    data: np.ndarray,
    src_affine: np.ndarray,
    world_map: np.ndarray,
    dst_shape,
    dst_affine,
    order: int = 1,
) -> np.ndarray:
    """Sample `data` (on src grid) at dst voxels, where world_map maps dst world to src world."""
    vox = np.linalg.inv(src_affine) @ world_map @ dst_affine
    return ndimage.affine_transform(
        data,
        vox[:3, :3],
        offset=vox[:3, 3],
        output_shape=tuple(dst_shape),
        order=order,
        mode="constant",
        cval=0.0,
        prefilter=False,
    )


def smooth_field(shape, rng: np.random.Generator, scale_vox: float) -> np.ndarray:
    """Zero-mean, unit-sd smooth random field with features about `scale_vox` voxels wide."""
    coarse = tuple(max(int(np.ceil(s / scale_vox)) + 1, 3) for s in shape)
    noise = ndimage.gaussian_filter(rng.standard_normal(coarse), 0.8, mode="wrap")
    # zoom factors s/c give exactly `shape`; separable linear zoom is far cheaper than
    # map_coordinates on the full grid.
    field = ndimage.zoom(noise, [s / c for s, c in zip(shape, coarse, strict=True)], order=1,
                         grid_mode=False)  # fmt: skip
    field = field.astype(np.float32)
    return (field - field.mean()) / (field.std() + 1e-9)


@dataclass
class Anatomy:
    """Tissue fractions and masks of one subject on the truth grid."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    fractions: dict[str, np.ndarray]
    brain_mask: np.ndarray
    mni_to_subject: np.ndarray


def _shell_fractions(dist: np.ndarray, thick: np.ndarray) -> dict[str, np.ndarray]:
    """Soft fractions of the extracranial layers from distance (mm) outside the brain hull."""
    # Layer boundaries in mm outside the brain hull; `thick` (~1) scales them smoothly per region.
    edges = {
        "csf": 2.5,
        "bone_in": 4.5,
        "marrow": 7.0,
        "bone_out": 8.5,
        "galea": 10.0,
        "fat": 15.0,
        "skin": 17.0,
    }
    names = list(edges)
    bounds = np.array([edges[k] for k in names])
    out: dict[str, np.ndarray] = {}
    prev = np.zeros_like(dist)
    for name, b in zip(names, bounds, strict=True):
        # Soft step (0.7 mm wide) gives partial-volume edges instead of staircase shells.
        cur = 1.0 / (1.0 + np.exp(-(b * thick - dist) / 0.7))
        out[name] = np.clip(cur - prev, 0, 1)
        prev = np.maximum(prev, cur)
    return {
        "csf": out["csf"],
        "bone": out["bone_in"] + out["bone_out"],
        "marrow": out["marrow"],
        "galea": out["galea"],
        "fat": out["fat"],
        "skin": out["skin"],
    }


def build_anatomy(
    row: dict, cohort: str, resolution_mm: float, rng: np.random.Generator
) -> Anatomy:
    """Warp the template to the subject and add head shells: tissue fractions on the truth grid."""
    tpl = load_template()
    shape, affine = truth_grid(cohort, resolution_mm)
    m = mni_to_subject(row, cohort)
    inv = np.linalg.inv(m)
    gm = resample_affine(tpl.gm, tpl.affine, inv, shape, affine)
    wm = resample_affine(tpl.wm, tpl.affine, inv, shape, affine)
    t1 = resample_affine(tpl.t1, tpl.affine, inv, shape, affine)
    inside = np.clip(t1 / 8.0, 0, 1)  # template is zero outside the brain; soft edge
    csf_in = np.clip(inside - gm - wm, 0, 1)
    brain_mask = ndimage.binary_fill_holes(t1 > 4.0)
    # The hull fills sulci: distance outside a smoothed brain gives smooth concentric shells.
    res = float(resolution_mm)
    hull = ndimage.gaussian_filter(brain_mask.astype(np.float32), 3.0 / res) > 0.25
    dist = ndimage.distance_transform_edt(~hull, sampling=res).astype(np.float32)
    thick = 1.0 + 0.18 * smooth_field(shape, rng, 40.0 / res)
    shells = _shell_fractions(dist, thick)
    outside = 1.0 - inside
    fractions = {"wm": wm, "gm": gm, "csf": csf_in + outside * shells["csf"]}
    for k in ("bone", "marrow", "galea", "fat", "skin"):
        fractions[k] = outside * shells[k]
    return Anatomy(
        shape, affine, {k: v.astype(np.float32) for k, v in fractions.items()}, brain_mask, m
    )
