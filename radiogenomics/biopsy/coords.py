"""Biopsy stage: map sample coordinates onto a session's preprocessed (reference) grid.

Conventions. NIfTI affines are RAS world millimetres (intake writes RAS images; every `prep/`
image lies on the reference-aligned grid). The co-registration writes, per non-reference
sequence, ANTs' forward rigid transform `{seq}_to_{ref}.mat` (ITK, LPS millimetres). For images
it resamples the sequence into reference space; for points it maps reference -> sequence
(ITK transforms map fixed-space points to moving-space points). A point measured in a sequence's
world therefore reaches the reference world through its inverse, as
`radiogenomics.imaging.atlas.invert_ants_affine_points` applies it; the sequence's world is that
of intake's `anat/{seq}.nii.gz` (N4 and reorientation keep it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.atlas import read_ants_affine
from radiogenomics.io import read_json

STAGE = "biopsy"
LPS4 = np.diag([-1.0, -1.0, 1.0, 1.0])


def world_to_voxel(points_mm: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel indices (N x 3) of world points (RAS mm) on a grid."""
    pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    return nib.affines.apply_affine(np.linalg.inv(affine), pts)


def voxel_to_world(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World points (RAS mm, N x 3) of continuous voxel indices."""
    return nib.affines.apply_affine(affine, np.atleast_2d(np.asarray(ijk, dtype=np.float64)))


def itk_rigid_to_ras(path: str | Path) -> np.ndarray:
    """4x4 RAS matrix of an ITK/ANTs affine `.mat` as it maps points (fixed -> moving world)."""
    matrix, translation, centre = read_ants_affine(path)
    # ITK: T(p) = M (p - c) + t + c in LPS; conjugating with diag(-1, -1, 1) gives RAS.
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = translation + centre - matrix @ centre
    return LPS4 @ lps @ LPS4


def sequence_to_reference(points_mm: np.ndarray, xfm: str | Path | None) -> np.ndarray:
    """World points of a sequence (RAS mm) -> the reference world (inverse of its `.mat`)."""
    pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    if xfm is None:
        return pts
    return nib.affines.apply_affine(np.linalg.inv(itk_rigid_to_ras(xfm)), pts)


def reference_to_sequence(points_mm: np.ndarray, xfm: str | Path | None) -> np.ndarray:
    """Reference-world points (RAS mm) -> a sequence's world (its `.mat` as ITK applies it)."""
    pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
    if xfm is None:
        return pts
    return nib.affines.apply_affine(itk_rigid_to_ras(xfm), pts)


@dataclass
class SessionGeometry:
    """What coordinate mapping needs of one session: the prep grid, reference and transforms."""

    session_dir: Path
    prep_affine: np.ndarray
    prep_shape: tuple[int, int, int]
    reference: str
    transforms: dict[str, Path] = field(default_factory=dict)

    def transform_for(self, sequence: str) -> Path | None:
        """The rigid `.mat` of a sequence (None for the reference); missing raises SubjectError."""
        if not sequence or sequence == self.reference:
            return None
        path = self.transforms.get(sequence)
        if path is None:
            candidates = [
                self.session_dir / "prep" / sub / f"{sequence}_to_{self.reference}.mat"
                for sub in ("xfm", "coreg/xfm")
            ]
            path = next((p for p in candidates if p.is_file()), candidates[0])
        if not path.is_file():
            raise SubjectError(
                f"no co-registration transform for sequence {sequence!r} (reference "
                f"{self.reference!r})",
                stage=STAGE,
                file=path,
            )
        return path

    def anat_affine(self, sequence: str) -> np.ndarray:
        """Affine of intake's `anat/{sequence}.nii.gz` (the grid voxel coordinates index)."""
        path = self.session_dir / "anat" / f"{sequence}.nii.gz"
        if not path.is_file():
            raise SubjectError(
                f"voxel coordinates name sequence {sequence!r}, but its intake image is missing",
                stage=STAGE,
                file=path,
            )
        return np.asarray(nib.load(str(path)).affine, dtype=np.float64)


def session_geometry(session_dir: str | Path, reference: str | None = None) -> SessionGeometry:
    """Geometry of `results/{cohort}/sub-X/ses-Y`: prep grid from `prep/{reference}.nii.gz`,
    reference and transforms from `prep/coreg/manifest.json` (else `prep/manifest.json`)."""
    sd = Path(session_dir)
    transforms: dict[str, Path] = {}
    ref = reference
    for manifest in (sd / "prep" / "coreg" / "manifest.json", sd / "prep" / "manifest.json"):
        if manifest.is_file() and manifest.stat().st_size:
            m = read_json(manifest)
            ref = ref or m.get("reference") or None
            for seq, rel in (m.get("transforms") or {}).items():
                transforms.setdefault(seq, (manifest.parent / rel).resolve())
    if not ref:
        raise SubjectError(
            "cannot tell the reference sequence (no 'reference' in the prep manifests)",
            stage=STAGE,
            file=sd / "prep" / "coreg" / "manifest.json",
        )
    grid = sd / "prep" / f"{ref}.nii.gz"
    if not grid.is_file():
        raise SubjectError("preprocessed reference image missing", stage=STAGE, file=grid)
    img = nib.load(str(grid))
    return SessionGeometry(
        session_dir=sd,
        prep_affine=np.asarray(img.affine, dtype=np.float64),
        prep_shape=tuple(int(s) for s in img.shape[:3]),
        reference=ref,
        transforms=transforms,
    )


def sample_to_reference_world(
    xyz: np.ndarray, space: str, sequence: str, geometry: SessionGeometry
) -> np.ndarray:
    """A sample's coordinates (table row) as a reference-world point (RAS mm, shape (3,))."""
    xyz = np.asarray(xyz, dtype=np.float64).reshape(1, 3)
    if space == "voxel":
        world = voxel_to_world(xyz, geometry.anat_affine(sequence))
    elif space == "scanner_ras":
        world = xyz
    else:
        raise ValueError(f"unknown coordinate space {space!r}")
    return sequence_to_reference(world, geometry.transform_for(sequence))[0]


def sample_to_prep_voxel(
    xyz: np.ndarray, space: str, sequence: str, geometry: SessionGeometry
) -> np.ndarray:
    """A sample's coordinates as continuous voxel indices (3,) of the session's prep grid."""
    world = sample_to_reference_world(xyz, space, sequence, geometry)
    return world_to_voxel(world, geometry.prep_affine)[0]
