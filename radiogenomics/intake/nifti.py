"""Intake stage: canonical NIfTI (RAS+, exact affine, clean header) from any source image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.intake.deid import clean_header, clean_sidecar
from radiogenomics.io import load_nifti


def to_ras(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Reorient to the closest RAS+ orientation by axis permutation/flip only (no resampling)."""
    return nib.as_closest_canonical(img)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_image(
    path: str | Path, *, what: str, integer_labels: bool = False
) -> tuple[nib.Nifti1Image, dict]:
    """Load, check, reorient and clean one image; return it with provenance for its sidecar."""
    img = load_nifti(path, stage="intake", what=what)
    data = np.asanyarray(img.dataobj)
    if data.size == 0 or min(data.shape) < 2:
        raise SubjectError(f"{what} has a degenerate shape {data.shape}", stage="intake", file=path)
    if (
        not np.isfinite(np.linalg.det(img.affine[:3, :3]))
        or abs(np.linalg.det(img.affine[:3, :3])) < 1e-9
    ):
        raise SubjectError(f"{what} has a singular affine", stage="intake", file=path)
    if integer_labels:
        rounded = np.rint(data)
        if not np.allclose(rounded, data):
            raise SubjectError(f"{what} is not an integer label image", stage="intake", file=path)
        img = nib.Nifti1Image(rounded.astype(np.uint8), img.affine, img.header)
        img.set_data_dtype(np.uint8)
    ras = clean_header(to_ras(img))
    prov = {
        "source_sha256": file_sha256(path),
        "source_orientation": "".join(nib.aff2axcodes(img.affine)),
        "shape": list(ras.shape),
        "voxel_size_mm": [round(float(v), 6) for v in ras.header.get_zooms()[:3]],
    }
    return ras, prov


def sidecar_for(source: str | Path) -> dict:
    """Whitelisted fields of a BIDS JSON sidecar beside the source image, if any."""
    src = Path(source)
    stem = src.name[: -len(".nii.gz")] if src.name.endswith(".nii.gz") else src.stem
    side = src.with_name(stem + ".json")
    if side.exists():
        try:
            return clean_sidecar(json.loads(side.read_text()))
        except json.JSONDecodeError as exc:
            raise SubjectError(
                f"sidecar is not valid JSON: {exc}", stage="intake", file=side
            ) from exc
    return {}
