"""Features stage, family `location`: VASARI-like location and morphology of the lesion.

Measured, not read: lobe involvement, hemisphere and midline crossing, ventricle and cortex
contact, compartment proportions (enhancing / necrosis / oedema), multifocality, volumes,
sphericity and the MNI centroid. Subject voxels are mapped to MNI152 (ICBM 2009a) millimetres by
a caller-supplied function (the preprocessing stage's `subject_to_mni_points` with
`prep/to_template_affine.mat`); without it the MNI-based features are NaN with a reason.

Lobes are an APPROXIMATE coordinate parcellation of MNI space (boxes and one slanted plane for the
central sulcus; see `lobe_labels`), good to about a centimetre near lobar borders — enough for the
VASARI "dominant lobe / lobes involved" items, not for anatomy. Ventricles are the template's deep
CSF (inside the filled GM+WM brain, GM+WM probability < 0.3, within a central box), built from the
MNI152 GM/WM templates shipped with nilearn. Cortex contact is measured in subject space: lesion
within `cortex_mm` of the brain-mask surface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.config import float_params
from radiogenomics.features.common import prefixed, spacing_mm, voxel_volume_ml
from radiogenomics.templates import mni152_path

FAMILY = "location"
LOBES = (
    "frontal",
    "parietal",
    "temporal",
    "occipital",
    "insula",
    "deep",
    "brainstem",
    "cerebellum",
)
PointMapper = Callable[[np.ndarray], np.ndarray]
MORPHOLOGY_ROIS = ("whole_tumor", "tumor_core", "enhancing", "necrosis", "edema")


@dataclass(frozen=True)
class LocationParams:
    """Thresholds (config `features.location`)."""

    min_component_ml: float = 0.5
    midline_margin_mm: float = 5.0
    midline_min_ml: float = 1.0
    lobe_min_fraction: float = 0.1
    contact_min_ml: float = 0.05
    cortex_mm: float = 3.0

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> LocationParams:
        """Build from a config mapping, ignoring unrelated keys."""
        return float_params(cls, cfg)


def lobe_labels(mni: np.ndarray) -> np.ndarray:
    """Index into LOBES for each MNI point (N, 3), by an approximate coordinate parcellation."""
    x, y, z = mni[:, 0], mni[:, 1], mni[:, 2]
    ax = np.abs(x)
    # Central sulcus as a plane slanting backwards with height: y = -15 mm at z = 30, -30 at z = 70.
    central_y = -15.0 - 0.375 * (z - 30.0)
    rules = [
        ("cerebellum", (z < -15) & (y < -45)),
        ("brainstem", (ax < 15) & (z < -10) & (y >= -45) & (y < -5)),
        ("deep", (ax < 26) & (y > -38) & (y < 22) & (z > -8) & (z < 20)),
        ("insula", (ax >= 26) & (ax < 42) & (y > -28) & (y < 24) & (z > -12) & (z < 22)),
        ("occipital", y < -72),
        ("temporal", (z < 5) & (y < 20)),
        ("frontal", y >= central_y),
        ("parietal", np.ones_like(ax, dtype=bool)),
    ]
    out = np.full(len(mni), -1, dtype=int)
    for name, sel in rules:
        out[(out < 0) & sel] = LOBES.index(name)
    return out


@lru_cache(maxsize=1)
def ventricle_prior() -> tuple[np.ndarray, np.ndarray]:
    """(boolean ventricle mask, affine) in MNI152 2009a space from nilearn's GM/WM templates."""
    gm = nib.load(mni152_path("gm"))
    wm = np.asarray(nib.load(mni152_path("wm")).dataobj, dtype=np.float32) / 255.0
    tissue = np.asarray(gm.dataobj, dtype=np.float32) / 255.0 + wm
    # 2 mm is ample for a contact test and 8x cheaper than the 1 mm template.
    tissue = tissue[::2, ::2, ::2]
    affine = gm.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(tissue > 0.5, iterations=2))
    ijk = np.indices(tissue.shape).reshape(3, -1).T
    mni = nib.affines.apply_affine(affine, ijk).reshape(*tissue.shape, 3)
    x, y, z = mni[..., 0], mni[..., 1], mni[..., 2]
    central = (np.abs(x) < 30) & (y > -50) & (y < 40) & (z > -10) & (z < 40)
    return brain & (tissue < 0.3) & central, affine


def sample_mask(mask: np.ndarray, affine: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Nearest-neighbour lookup of a mask at world points (outside the grid = False)."""
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), points_mm)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    out = np.zeros(len(points_mm), dtype=bool)
    out[inside] = mask[tuple(ijk[inside].T)]
    return out


def sphericity(mask: np.ndarray, spacing: tuple) -> float:
    """IBSI sphericity from the marching-cubes mesh (mesh area and mesh volume)."""
    from skimage import measure

    if mask.sum() < 2:
        return np.nan
    padded = np.pad(mask.astype(np.float32), 1)
    verts, faces, _, _ = measure.marching_cubes(padded, 0.5, spacing=spacing)
    area = measure.mesh_surface_area(verts, faces)
    tri = verts[faces]
    # Divergence theorem: signed tetrahedra from the origin sum to the enclosed volume.
    volume = abs(float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6)
    return float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area)


def components(mask: np.ndarray, min_voxels: int) -> int:
    """Number of 26-connected components with at least `min_voxels` voxels."""
    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return 0
    sizes = np.bincount(lab.ravel())[1:]
    return int((sizes >= min_voxels).sum())


def morphology(masks: Mapping[str, np.ndarray], affine: np.ndarray, p: LocationParams) -> dict:
    """Subject-space features: volumes, proportions, multifocality, sphericity."""
    vml = voxel_volume_ml(affine)
    sp = spacing_mm(affine)
    whole = masks["whole_tumor"]
    n_whole = float(whole.sum())
    out: dict = {}
    for roi in MORPHOLOGY_ROIS:
        m = masks.get(roi)
        vals = {"volume_ml": float(m.sum()) * vml if m is not None else np.nan}
        if roi != "whole_tumor":
            vals["fraction_of_whole"] = (
                (float(m.sum()) / n_whole) if m is not None and n_whole else np.nan
            )
        out.update(prefixed(FAMILY, "all", roi, vals))
    n_comp = components(whole, max(1, int(np.ceil(p.min_component_ml / vml))))
    w = {
        "n_components": float(n_comp),
        "multifocal": float(n_comp >= 2),
        "sphericity": sphericity(whole, sp),
    }
    out.update(prefixed(FAMILY, "all", "whole_tumor", w))
    core = masks.get("tumor_core")
    out.update(
        prefixed(
            FAMILY,
            "all",
            "tumor_core",
            {"sphericity": sphericity(core, sp) if core is not None and core.any() else np.nan},
        )
    )
    return out


def cortex_contact(
    whole: np.ndarray, brain: np.ndarray, affine: np.ndarray, p: LocationParams
) -> float:
    """1.0 when >= contact_min_ml of the lesion lies within cortex_mm of the brain surface."""
    depth = ndimage.distance_transform_edt(brain, sampling=spacing_mm(affine))
    near = whole & brain & (depth <= p.cortex_mm)
    return float(near.sum() * voxel_volume_ml(affine) >= p.contact_min_ml)


MNI_FEATURES = (
    [f"lobe_fraction_{lobe}" for lobe in LOBES]
    + ["n_lobes", "right_fraction", "midline_crossing", "ventricle_contact"]
    + ["centroid_mni_x", "centroid_mni_y", "centroid_mni_z"]
)


def mni_features(
    whole: np.ndarray, affine: np.ndarray, to_mni: PointMapper, p: LocationParams
) -> dict:
    """MNI-space features of the whole tumour: lobes, hemisphere, midline, ventricles, centroid."""
    vml = voxel_volume_ml(affine)
    ijk = np.argwhere(whole)
    pts = to_mni(nib.affines.apply_affine(affine, ijk))
    lobes = lobe_labels(pts)
    fr = np.bincount(lobes, minlength=len(LOBES)) / len(lobes)
    out = {f"lobe_fraction_{lobe}": float(f) for lobe, f in zip(LOBES, fr, strict=True)}
    out["n_lobes"] = float((fr >= p.lobe_min_fraction).sum())
    x = pts[:, 0]
    out["right_fraction"] = float((x > 0).mean())
    # Crossing = one connected lesion with >= midline_min_ml on each side (not bilateral foci).
    lab, n = ndimage.label(whole, structure=np.ones((3, 3, 3)))
    comp = lab[tuple(ijk.T)]
    crossing = False
    for c in range(1, n + 1):
        xc = x[comp == c]
        left_ml = float((xc < -p.midline_margin_mm).sum()) * vml
        right_ml = float((xc > p.midline_margin_mm).sum()) * vml
        crossing = crossing or min(left_ml, right_ml) >= p.midline_min_ml
    out["midline_crossing"] = float(crossing)
    # Contact = the lesion grown by one voxel reaches the ventricle prior.
    grown = ndimage.binary_dilation(whole, structure=ndimage.generate_binary_structure(3, 1))
    gpts = to_mni(nib.affines.apply_affine(affine, np.argwhere(grown)))
    vent, vaff = ventricle_prior()
    out["ventricle_contact"] = float(sample_mask(vent, vaff, gpts).sum() * vml >= p.contact_min_ml)
    c = pts.mean(axis=0)
    out.update({"centroid_mni_x": c[0], "centroid_mni_y": c[1], "centroid_mni_z": c[2]})
    return {k: float(v) for k, v in out.items()}


def extract_location(
    masks: Mapping[str, np.ndarray],
    brain: np.ndarray | None,
    affine: np.ndarray,
    to_mni: PointMapper | None,
    p: LocationParams,
) -> tuple[dict, list[str]]:
    """All location features -> (features, reasons for NaN blocks)."""
    reasons: list[str] = []
    feats = morphology(masks, affine, p)
    whole = masks["whole_tumor"]
    feats.update(
        prefixed(
            FAMILY,
            "all",
            "whole_tumor",
            {
                "cortex_contact": cortex_contact(whole, brain, affine, p)
                if brain is not None
                else np.nan
            },
        )
    )
    if brain is None:
        reasons.append("brain mask unusable: cortex_contact is NaN")
    mni = dict.fromkeys(MNI_FEATURES, np.nan)
    if to_mni is None:
        reasons.append("no subject-to-MNI mapping: MNI-based location features are NaN")
    elif not whole.any():
        reasons.append("whole_tumor empty: MNI-based location features are NaN")
    else:
        mni = mni_features(whole, affine, to_mni, p)
    feats.update(prefixed(FAMILY, "all", "whole_tumor", mni))
    return feats, reasons
