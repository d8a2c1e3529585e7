"""Features stage: shared loading, ROI/QC checks and row assembly for every feature family.

Every family writes one row per subject/session (`{sd}/features/{family}.tsv`) with id columns
`cohort, subject, session`, features `{family}__{seq}__{roi}__{feature}`, provenance `prov__*` and
`qc_reason`. Expected bad input (missing optional map, empty or tiny ROI, NaN/inf in a map,
mask/image geometry mismatch) never raises: the affected features are NaN and `qc_reason` names
the subject and file. Truly unreadable files raise `SubjectError` through `load_nifti`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.errors import SubjectError
from radiogenomics.io import load_nifti
from radiogenomics.paths import entities_from_path, feature_column

STAGE = "features"
ID_COLUMNS = ("cohort", "subject", "session")
# Affines on one grid agree to float32 precision; anything looser is a different grid.
AFFINE_ATOL_MM = 1e-3


@dataclass
class QC:
    """Collects human-readable reasons why some features are NaN (joined into `qc_reason`)."""

    who: str = ""
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str, file: str | Path | None = None) -> None:
        """Record one reason, naming the subject and (when known) the file."""
        where = f" ({Path(file).name})" if file else ""
        text = f"{self.who}{where}: {reason}" if self.who else f"{reason}{where}"
        if text not in self.reasons:
            self.reasons.append(text)

    def text(self) -> str:
        """All reasons, `; `-separated (empty when all is well)."""
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Ids:
    """Subject/session identity of a feature row."""

    cohort: str
    subject: str
    session: str

    @classmethod
    def from_path(cls, path: str | Path) -> Ids:
        """Identity from any path inside `results/{cohort}/sub-{subject}/ses-{session}`."""
        return cls(*entities_from_path(path))

    def who(self) -> str:
        """`cohort/subject/session` for messages."""
        return f"{self.cohort}/{self.subject}/{self.session}"


def read_manifest(path: str | Path) -> dict:
    """Read `prep/manifest.json`; an unreadable manifest is a subject failure."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SubjectError(f"cannot read manifest: {exc}", stage=STAGE, file=path) from exc
    if not isinstance(data.get("sequences", {}), dict):
        raise SubjectError("manifest 'sequences' must be a mapping", stage=STAGE, file=path)
    return data


def sequence_paths(manifest: Mapping, manifest_path: str | Path) -> dict[str, Path]:
    """Present sequences -> absolute NIfTI path (manifest entries are relative to its folder)."""
    base = Path(manifest_path).parent
    out = {}
    for seq, rel in manifest.get("sequences", {}).items():
        p = Path(rel)
        out[seq] = p if p.is_absolute() else base / p
    return out


def missing_reason(manifest: Mapping, seq: str) -> str:
    """Why a sequence is absent, per the manifest (or a generic reason)."""
    why = manifest.get("missing", {}).get(seq)
    return f"{seq} not available" + (f" ({why})" if why else "")


def load_volume(path: str | Path, what: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """(float64 array, affine) of a 3-D NIfTI; unreadable files raise SubjectError."""
    img = load_nifti(path, stage=STAGE, what=what)
    return np.asarray(img.dataobj, dtype=np.float64), np.asarray(img.affine, dtype=np.float64)


def same_grid(shape_a, affine_a, shape_b, affine_b) -> bool:
    """True when two volumes share matrix size and affine (within AFFINE_ATOL_MM)."""
    return tuple(shape_a) == tuple(shape_b) and np.allclose(affine_a, affine_b, atol=AFFINE_ATOL_MM)


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres."""
    return float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0


def spacing_mm(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel spacing (mm) from an affine."""
    return tuple(float(x) for x in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


@dataclass
class Rois:
    """Binary ROI masks on the reference grid; `problems[roi]` says why an ROI is unusable."""

    masks: dict[str, np.ndarray | None]
    paths: dict[str, Path]
    affine: np.ndarray
    shape: tuple[int, int, int]
    problems: dict[str, str] = field(default_factory=dict)


def load_rois(roi_paths: Mapping[str, str | Path], min_voxels: int) -> Rois:
    """Load ROI masks; empty/tiny ROIs and grid mismatches become `problems`, not errors."""
    masks: dict[str, np.ndarray | None] = {}
    problems: dict[str, str] = {}
    ref_shape, ref_affine = None, None
    paths = {roi: Path(p) for roi, p in roi_paths.items()}
    for roi, p in paths.items():
        arr, aff = load_volume(p, what=f"ROI {roi}")
        if ref_shape is None:
            ref_shape, ref_affine = arr.shape, aff
        if not same_grid(arr.shape, aff, ref_shape, ref_affine):
            masks[roi] = None
            problems[roi] = f"ROI {roi} grid {arr.shape} differs from other ROIs"
            continue
        mask = np.nan_to_num(arr) > 0.5
        masks[roi] = mask
        problems_roi = roi_size_problem(roi, int(mask.sum()), min_voxels)
        if problems_roi:
            problems[roi] = problems_roi
    return Rois(masks, paths, ref_affine, tuple(ref_shape), problems)


def roi_size_problem(roi: str, n_voxels: int, min_voxels: int) -> str:
    """Reason an ROI is too small to measure, or '' when it is usable."""
    if n_voxels == 0:
        return f"ROI {roi} is empty"
    if n_voxels < min_voxels:
        return f"ROI {roi} has {n_voxels} voxels < min_roi_voxels={min_voxels}"
    return ""


def image_problem(arr: np.ndarray, affine: np.ndarray, rois: Rois, seq: str) -> str:
    """Reason an image cannot be paired with the ROIs (grid mismatch), or ''."""
    if not same_grid(arr.shape, affine, rois.shape, rois.affine):
        return (
            f"{seq} grid {arr.shape} does not match ROI grid {rois.shape} "
            f"(or affines differ by > {AFFINE_ATOL_MM} mm)"
        )
    return ""


def roi_values(arr: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """Intensities inside `mask`; a reason is returned (and values emptied) if any is NaN/inf."""
    vals = arr[mask]
    bad = ~np.isfinite(vals)
    if bad.any():
        return np.empty(0), f"{int(bad.sum())} non-finite voxel(s) inside the ROI"
    return vals, ""


def erode_dilate(mask: np.ndarray, how: str, limit: np.ndarray | None = None) -> np.ndarray:
    """Robustness perturbation: 'original', 'erode1' or 'dilate1' (6-connected, 1 voxel)."""
    if how == "original":
        return mask
    structure = ndimage.generate_binary_structure(3, 1)
    if how == "erode1":
        return ndimage.binary_erosion(mask, structure=structure)
    if how == "dilate1":
        out = ndimage.binary_dilation(mask, structure=structure)
        # A dilated tumour must stay inside the brain.
        return out & limit if limit is not None else out
    raise ValueError(f"unknown perturbation {how!r}")


def nan_block(family: str, seqs: Iterable[str], rois: Iterable[str], names: Iterable[str]) -> dict:
    """NaN for every `{family}__{seq}__{roi}__{name}` column (keeps columns stable)."""
    names = list(names)
    rois = list(rois)
    return {feature_column(family, s, r, n): np.nan for s in seqs for r in rois for n in names}


def prefixed(family: str, seq: str, roi: str, values: Mapping[str, float]) -> dict:
    """Rename a `{feature: value}` mapping to full column names."""
    return {feature_column(family, seq, roi, k): v for k, v in values.items()}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (provenance)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def feature_row(ids: Ids, features: Mapping, prov: Mapping, qc: QC) -> pd.DataFrame:
    """Assemble the one-row table: ids, features, `prov__*`, `qc_reason`."""
    row: dict = {"cohort": ids.cohort, "subject": ids.subject, "session": ids.session}
    row.update(features)
    row.update({f"prov__{k}": v for k, v in prov.items()})
    row["qc_reason"] = qc.text()
    return pd.DataFrame([row])


def intensity_features(
    family: str,
    seqs: Iterable[str],
    seq_paths: Mapping[str, Path],
    manifest: Mapping,
    rois: Rois,
    stats,
    names: Iterable[str],
    qc: QC,
    masks: Mapping[str, np.ndarray | None] | None = None,
) -> dict:
    """Apply `stats(values) -> {name: value}` to every sequence x ROI; problems give NaN + reason.

    `masks` overrides `rois.masks` (used for perturbed ROIs); missing sequences, grid mismatches,
    unusable ROIs and non-finite voxels leave that block NaN and add a reason to `qc`.
    """
    names = list(names)
    masks = rois.masks if masks is None else masks
    out: dict = {}
    for seq in seqs:
        out.update(nan_block(family, [seq], masks, names))
        if seq not in seq_paths:
            qc.add(missing_reason(manifest, seq))
            continue
        arr, aff = load_volume(seq_paths[seq], what=seq)
        problem = image_problem(arr, aff, rois, seq)
        if problem:
            qc.add(problem, seq_paths[seq])
            continue
        for roi, mask in masks.items():
            if mask is None or roi in rois.problems:
                qc.add(rois.problems.get(roi, f"ROI {roi} unusable"), rois.paths.get(roi))
                continue
            vals, why = roi_values(arr, mask)
            if why:
                qc.add(f"{seq}/{roi}: {why}", seq_paths[seq])
                continue
            out.update(prefixed(family, seq, roi, stats(vals)))
    return out


def perturb_rois(
    rois: Rois, how: str, min_voxels: int, keep: Iterable[str], limit: np.ndarray | None = None
) -> Rois:
    """A new `Rois` with the `keep` ROIs eroded/dilated by one voxel (sizes re-checked)."""
    masks: dict[str, np.ndarray | None] = {}
    problems: dict[str, str] = {}
    for roi in keep:
        mask = rois.masks.get(roi)
        if mask is None or roi in rois.problems:
            masks[roi] = None
            problems[roi] = rois.problems.get(roi, f"ROI {roi} unusable")
            continue
        masks[roi] = erode_dilate(mask, how, limit)
        why = roi_size_problem(f"{roi} ({how})", int(masks[roi].sum()), min_voxels)
        if why:
            problems[roi] = why
    return Rois(masks, rois.paths, rois.affine, rois.shape, problems)
