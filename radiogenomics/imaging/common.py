"""Imaging chain (preprocessing): shared geometry, manifest and image helpers used by every step.

ANTs works in LPS physical space, nibabel in RAS. Images cross between them through `to_ants` /
`from_ants`, which convert the voxel-to-world affine exactly, without a temporary NIfTI (ITK's NIfTI
reader may prefer the qform or sform differently from nibabel, and we must never lose the sform).
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.io import read_json, save_nifti, write_json

LPS = np.diag([-1.0, -1.0, 1.0])
MAPS_DEFAULT = ("adc", "rcbv")


def set_threads(threads: int) -> None:
    """Let ITK/ANTs and torch use the rule's thread count."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(threads)))
    try:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    except ImportError:  # torch is only needed for HD-BET
        pass


def seed_ants(seed: int) -> None:
    """Fix ANTs' sampling seed and use one ITK thread so registrations are repeatable."""
    import ants

    ants.config._random_seed = int(seed) % (2**31 - 1)
    # Random metric sampling split over several ITK threads differs run to run even with a
    # fixed seed (measured: rigid transforms differ by ~0.02 deg); one thread is repeatable.
    # ITK reads this when a registration first starts, so setting it here is in time.
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths (mm) from an affine."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def shrink_to_spacing(zooms: tuple[float, ...], target_mm: float) -> int:
    """Integer downsampling that brings the finest voxel side to about `target_mm` (>= 1)."""
    finest = max(min(float(z) for z in zooms), 1e-6)
    return max(1, int(round(target_mm / finest)))


def to_ants(img: nib.Nifti1Image, data: np.ndarray | None = None):
    """nibabel image (RAS affine) -> ANTsImage (LPS) with the same voxel-to-world mapping."""
    import ants

    arr = np.asarray(img.dataobj if data is None else data, dtype=np.float32)
    aff = np.asarray(img.affine, dtype=np.float64)
    sp = voxel_sizes(aff)
    direction = LPS @ (aff[:3, :3] / sp)
    origin = LPS @ aff[:3, 3]
    return ants.from_numpy(
        np.ascontiguousarray(arr), origin=origin.tolist(), spacing=sp.tolist(), direction=direction
    )


def ants_affine(aimg) -> np.ndarray:
    """RAS voxel-to-world affine of an ANTsImage."""
    aff = np.eye(4)
    aff[:3, :3] = LPS @ np.asarray(aimg.direction) * np.asarray(aimg.spacing)
    aff[:3, 3] = LPS @ np.asarray(aimg.origin)
    return aff


def header_for_grid(affine: np.ndarray, like: nib.Nifti1Image | None = None) -> nib.Nifti1Header:
    """A header whose qform and sform both equal `affine` (codes from `like`, else scanner=1)."""
    hdr = like.header.copy() if like is not None else nib.Nifti1Header()
    qcode = int(hdr["qform_code"]) or 1
    scode = int(hdr["sform_code"]) or 1
    hdr.set_qform(affine, code=qcode)
    hdr.set_sform(affine, code=scode)
    return hdr


def image_on_header(
    data: np.ndarray, header: nib.Nifti1Header, dtype=np.float32
) -> nib.Nifti1Image:
    """Wrap `data` with a copy of `header`, keeping qform/sform fields verbatim."""
    arr = np.asarray(data, dtype=dtype)
    hdr = header.copy()
    hdr.set_data_dtype(arr.dtype)
    # Passing the header's own best affine makes nibabel keep qform and sform fields verbatim.
    img = nib.Nifti1Image(arr, hdr.get_best_affine(), hdr)
    img.header.set_slope_inter(1.0, 0.0)
    return img


def save_on(data: np.ndarray, like: nib.Nifti1Image, path: str | Path, dtype=np.float32) -> None:
    """Save `data` on the exact grid and header geometry of `like` (atomic)."""
    save_nifti(image_on_header(data, like.header, dtype), path)


def from_ants_on_grid(aimg, like: nib.Nifti1Image) -> np.ndarray:
    """Voxel array of an ANTsImage that must lie on `like`'s grid (checked)."""
    if tuple(aimg.shape) != tuple(like.shape) or not np.allclose(
        ants_affine(aimg), like.affine, atol=1e-3
    ):
        raise ValueError("ANTs image is not on the expected grid")
    return aimg.numpy().astype(np.float32)


def reference_grid(ref: nib.Nifti1Image, spacing_mm: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Affine and shape of an isotropic grid aligned with `ref` that covers its field of view."""
    aff = np.asarray(ref.affine, dtype=np.float64)
    sp = voxel_sizes(aff)
    direction = aff[:3, :3] / sp
    extent = np.asarray(ref.shape[:3]) * sp
    shape = tuple(int(max(1, np.ceil(e / spacing_mm - 1e-6))) for e in extent)
    new = np.eye(4)
    new[:3, :3] = direction * spacing_mm
    # The first voxel's outer corner stays where the reference's was.
    new[:3, 3] = aff[:3, 3] + direction @ ((spacing_mm - sp) / 2.0)
    return new, shape


def empty_grid_image(affine: np.ndarray, shape: tuple[int, ...], like=None) -> nib.Nifti1Image:
    """A zero float32 image on a grid; qform = sform = affine."""
    hdr = header_for_grid(affine, like)
    return image_on_header(np.zeros(shape, np.float32), hdr)


def check_image_usable(data: np.ndarray, *, stage: str, file: str | Path) -> None:
    """Raise SubjectError for blank, constant or non-finite images."""
    if not np.all(np.isfinite(data)):
        raise SubjectError("image contains NaN/inf values", stage=stage, file=file)
    nz = np.count_nonzero(data)
    if nz < 0.001 * data.size or float(np.std(data)) == 0.0:
        raise SubjectError(
            f"image is blank or constant ({nz} non-zero voxels of {data.size})",
            stage=stage,
            file=file,
        )


def is_ras(img: nib.Nifti1Image) -> bool:
    """True when the voxel axes are closest to R, A, S."""
    return nib.aff2axcodes(img.affine) == ("R", "A", "S")


def read_manifest(path: str | Path, *, stage: str) -> dict:
    """Load a stage manifest; an empty placeholder means an earlier step failed."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        raise SubjectError(
            "manifest missing or empty (an earlier step failed?)", stage=stage, file=p
        )
    m = read_json(p)
    if not m.get("sequences"):
        raise SubjectError("manifest lists no sequences", stage=stage, file=p)
    return m


def sequence_paths(manifest_path: str | Path, manifest: dict) -> dict[str, Path]:
    """Absolute-ish paths of the manifest's sequences (relative to the manifest's folder)."""
    base = Path(manifest_path).parent
    return {seq: base / name for seq, name in manifest["sequences"].items()}


def write_manifest(path: str | Path, upstream: dict, sequences: dict[str, str], **extra) -> None:
    """Write a manifest keeping ids and `missing` from the upstream one."""
    out = {k: upstream.get(k, "") for k in ("cohort", "subject", "session")}
    out["sequences"] = dict(sorted(sequences.items()))
    out["missing"] = upstream.get("missing", {})
    out.update(extra)
    write_json(out, path)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary masks."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    s = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / s) if s else 1.0


def ensure_ras(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Reorient to RAS+ (a no-op copy when already RAS, which keeps the header verbatim)."""
    from radiogenomics.imaging.reorient import to_ras

    return to_ras(img)


__all__ = [
    "MAPS_DEFAULT",
    "check_image_usable",
    "dice",
    "empty_grid_image",
    "ensure_ras",
    "from_ants_on_grid",
    "header_for_grid",
    "image_on_header",
    "is_ras",
    "read_manifest",
    "reference_grid",
    "save_on",
    "seed_ants",
    "sequence_paths",
    "set_threads",
    "to_ants",
    "voxel_sizes",
    "write_manifest",
]
