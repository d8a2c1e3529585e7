"""Biopsy stage: intensity statistics in a sphere around each sample, and for every voxel at once.

A sample's sphere is the set of prep-grid voxels whose centres lie within `radius_mm` of the
sample point, intersected with the brain mask (and the tumour ROI when `within="tumour"`).
Per sample every histogram statistic of the `histogram` feature family is computed
(`features.histogram.histogram_stats`: percentiles, mean, std, skewness, kurtosis, ...), named
`{seq}__{stat}`. The probability maps need the same statistics at every voxel: mean and std
(population sd, as histogram_stats) are sums of x and x^2 over the masked sphere, so one FFT
convolution of the masked image, its square and the mask gives them for all voxels at once
(`DENSE_STATS`); percentiles have no such form, so a model meant for maps uses only DENSE_STATS.
A sphere with less than `min_fraction` of its voxels inside the mask, or a point off the image,
raises SubjectError; `biopsy_features` records it per sample and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from radiogenomics.biopsy.coords import (
    STAGE,
    SessionGeometry,
    sample_to_prep_voxel,
    session_geometry,
)
from radiogenomics.biopsy.table import marker_columns
from radiogenomics.errors import SubjectError
from radiogenomics.features.histogram import histogram_stats
from radiogenomics.io import load_nifti, read_json
from radiogenomics.paths import subject_dir

log = logging.getLogger(__name__)
DENSE_STATS = ("mean", "std")
ID_COLUMNS = ("cohort", "subject", "session", "sample_id")
FAILURE_COLUMNS = (*ID_COLUMNS, "stage", "file", "message")


@dataclass(frozen=True)
class SphereParams:
    """Sphere features settings (config `biopsy.sphere`)."""

    radius_mm: float = 5.0
    within: str = "brain"  # "brain", or "tumour" for sphere ∩ brain ∩ tumour ROI
    tumour_roi: str = "whole_tumor"
    min_fraction: float = 0.5
    percentiles: tuple[float, ...] = (10, 25, 50, 75, 90)
    n_bins: int = 32

    def __post_init__(self) -> None:
        if self.within not in ("brain", "tumour"):
            raise ValueError(f"sphere 'within' must be 'brain' or 'tumour', got {self.within!r}")
        if self.radius_mm <= 0:
            raise ValueError(f"sphere radius must be > 0 mm, got {self.radius_mm}")

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> SphereParams:
        """Build from a config mapping, ignoring unrelated keys."""
        keys = set(cls.__dataclass_fields__)
        vals = {k: tuple(v) if isinstance(v, list) else v for k, v in (cfg or {}).items()}
        return cls(**{k: v for k, v in vals.items() if k in keys})


def spacing_of(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths (mm)."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def sphere_kernel(spacing: np.ndarray, radius_mm: float) -> np.ndarray:
    """Boolean ball of voxel offsets whose centres are within `radius_mm` (odd, centred)."""
    half = np.floor(radius_mm / np.asarray(spacing, float) + 1e-9).astype(int)
    grids = np.meshgrid(*(np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)),
                        indexing="ij")  # fmt: skip
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-9


def sphere_voxels(
    centre_ijk: np.ndarray, shape: tuple[int, ...], spacing: np.ndarray, radius_mm: float
) -> tuple[np.ndarray, int]:
    """(voxel indices (K x 3) of the sphere inside the grid, voxel count of the full sphere)."""
    c = np.asarray(centre_ijk, float)
    r_vox = radius_mm / np.asarray(spacing, float)
    lo = np.ceil(c - r_vox - 1e-9).astype(int)
    hi = np.floor(c + r_vox + 1e-9).astype(int)
    axes = [np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d2 = (((ijk - c) * spacing) ** 2).sum(1)
    ball = ijk[d2 <= radius_mm**2 + 1e-9]
    inside = np.all((ball >= 0) & (ball < np.asarray(shape)), axis=1)
    return ball[inside], int(len(ball))


def sample_stats(
    images: Mapping[str, np.ndarray | None],
    mask: np.ndarray,
    centre_ijk: np.ndarray,
    spacing: np.ndarray,
    params: SphereParams,
) -> dict:
    """Sphere statistics of every image around one continuous prep-grid point.

    Raises ValueError when the point lies off the grid or the masked sphere is too small."""
    shape = mask.shape
    if np.any(np.asarray(centre_ijk) < -0.5) or np.any(
        np.asarray(centre_ijk) > np.array(shape) - 0.5
    ):
        raise ValueError(
            f"point (voxel {np.round(centre_ijk, 1).tolist()}) lies outside the image {shape}"
        )
    ball, n_full = sphere_voxels(centre_ijk, shape, spacing, params.radius_mm)
    keep = mask[tuple(ball.T)] if len(ball) else np.zeros(0, bool)
    fraction = float(keep.sum()) / max(n_full, 1)
    if fraction < params.min_fraction:
        raise ValueError(
            f"only {fraction:.0%} of the {params.radius_mm:g} mm sphere lies inside the "
            f"{params.within} mask (need {params.min_fraction:.0%}): outside the brain/tumour?"
        )
    vox = tuple(ball[keep].T)
    out: dict = {"n_voxels": float(keep.sum()), "mask_fraction": fraction}
    for seq, img in images.items():
        if img is None:
            continue
        values = np.asarray(img[vox], dtype=np.float64)
        for name, v in histogram_stats(values, params.percentiles, params.n_bins).items():
            out[f"{seq}__{name}"] = v
    return out


def dense_sphere_stats(
    image: np.ndarray, mask: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masked-sphere mean, std (population) and voxel count at every voxel, by FFT convolution."""
    m = np.asarray(mask, np.float64)
    x = np.where(mask, np.asarray(image, np.float64), 0.0)
    k = np.asarray(kernel, np.float64)
    n = np.rint(fftconvolve(m, k, mode="same"))
    s1 = fftconvolve(x, k, mode="same")
    s2 = fftconvolve(x * x, k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / n, np.nan)
        var = np.where(n > 0, s2 / n - mean**2, np.nan)
    # FFT round-off can leave tiny negative variances in flat regions.
    return mean, np.sqrt(np.clip(var, 0.0, None)), n


@dataclass
class SessionImages:
    """A session's prep images, masks and grid, loaded once for all of its samples."""

    images: dict[str, np.ndarray | None]
    brain: np.ndarray
    tumour: np.ndarray | None
    reference_img: nib.Nifti1Image
    geometry: SessionGeometry
    files: dict[str, Path]

    @property
    def spacing(self) -> np.ndarray:
        return spacing_of(self.geometry.prep_affine)

    def mask(self, params: SphereParams) -> np.ndarray:
        """Brain, or brain ∩ tumour when the sphere is confined to the tumour."""
        if params.within == "tumour":
            if self.tumour is None:
                raise SubjectError(
                    "tumour ROI needed (sphere within='tumour') but missing",
                    stage=STAGE,
                    file=self.files.get("tumour"),
                )
            return self.brain & self.tumour
        return self.brain


def _on_grid(img: nib.Nifti1Image, geometry: SessionGeometry, path: Path) -> np.ndarray:
    """Voxel array of an image that must lie on the session's prep grid (checked)."""
    if tuple(img.shape[:3]) != geometry.prep_shape or not np.allclose(
        img.affine, geometry.prep_affine, atol=1e-3
    ):
        raise SubjectError(
            f"image is not on the prep grid {geometry.prep_shape} of the reference", stage=STAGE,
            file=path,
        )  # fmt: skip
    return np.asarray(img.dataobj, dtype=np.float32)


def load_session(
    session_dir: str | Path,
    sequences: Iterable[str] | None = None,
    tumour_roi: str = "whole_tumor",
) -> SessionImages:
    """Prep images (`prep/{seq}.nii.gz`, sequences from `prep/manifest.json` unless given; an
    absent optional map is None), `prep/brain_mask.nii.gz` and `seg/rois/{tumour_roi}.nii.gz`."""
    sd = Path(session_dir)
    geometry = session_geometry(sd)
    manifest = sd / "prep" / "manifest.json"
    listed = list(read_json(manifest).get("sequences", {})) if manifest.is_file() else []
    seqs = list(sequences) if sequences is not None else listed
    if not seqs:
        raise SubjectError("no sequences listed in the prep manifest", stage=STAGE, file=manifest)
    files = {seq: sd / "prep" / f"{seq}.nii.gz" for seq in seqs}
    images: dict[str, np.ndarray | None] = {}
    for seq, path in files.items():
        images[seq] = (
            _on_grid(load_nifti(path, stage=STAGE, what=f"{seq} image"), geometry, path)
            if path.is_file()
            else None
        )
    files["brain"] = sd / "prep" / "brain_mask.nii.gz"
    brain = _on_grid(load_nifti(files["brain"], stage=STAGE, what="brain mask"), geometry,
                     files["brain"]) > 0  # fmt: skip
    files["tumour"] = sd / "seg" / "rois" / f"{tumour_roi}.nii.gz"
    tumour = None
    if files["tumour"].is_file():
        tumour_img = load_nifti(files["tumour"], stage=STAGE, what=f"{tumour_roi} ROI")
        tumour = _on_grid(tumour_img, geometry, files["tumour"]) > 0
    ref = nib.load(str(sd / "prep" / f"{geometry.reference}.nii.gz"))
    return SessionImages(images, brain, tumour, ref, geometry, files)


def session_sample_features(
    samples: pd.DataFrame, session: SessionImages, params: SphereParams, who: dict
) -> tuple[list[dict], list[dict]]:
    """Feature rows and failure rows for the samples of one loaded session."""
    rows, failures = [], []
    mask = session.mask(params)
    for rec in samples.to_dict("records"):
        ids = {**who, "sample_id": rec["sample_id"]}
        try:
            xyz = np.array([rec["x"], rec["y"], rec["z"]], float)
            ijk = sample_to_prep_voxel(xyz, rec["space"], rec.get("sequence", ""), session.geometry)
            try:
                feats = sample_stats(session.images, mask, ijk, session.spacing, params)
            except ValueError as exc:
                raise SubjectError(
                    f"sample {rec['sample_id']}: {exc}",
                    stage=STAGE,
                    file=session.files["tumour" if params.within == "tumour" else "brain"],
                    cohort=who["cohort"],
                    subject=who["subject"],
                    session=who["session"],
                ) from exc
        except SubjectError as exc:
            log.warning("%s", exc)
            failures.append({**ids, "stage": STAGE, "file": exc.file, "message": exc.describe()})
            continue
        markers = {c: rec[c] for c in marker_columns(samples)}
        centre = dict(zip(("prep_i", "prep_j", "prep_k"), np.round(ijk, 3), strict=True))
        rows.append({**ids, **markers, **centre, **feats})
    return rows, failures


def biopsy_features(
    table: pd.DataFrame,
    cohort: str,
    params: SphereParams = SphereParams(),
    root: str | Path = "results",
    sequences: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sphere features of every sample of a validated biopsy table, and the failures.

    One row per sample that worked: cohort, subject, session, sample_id, the marker columns,
    prep_i/j/k (the sample's prep-grid voxel), n_voxels, mask_fraction and `{seq}__{stat}`.
    A session or sample that fails (missing files, sphere outside the brain) becomes a row of
    the failures table (cohort, subject, session, sample_id, stage, file, message)."""
    rows: list[dict] = []
    failures: list[dict] = []
    for (subject, session), samples in table.groupby(["subject", "session"], sort=True):
        who = {"cohort": cohort, "subject": str(subject), "session": str(session)}
        sd = subject_dir(cohort, str(subject), str(session), root)
        try:
            loaded = load_session(sd, sequences, params.tumour_roi)
            r, f = session_sample_features(samples, loaded, params, who)
        except SubjectError as exc:
            exc.cohort, exc.subject, exc.session = cohort, str(subject), str(session)
            log.warning("%s", exc.describe())
            f = [
                {**who, "sample_id": sid, "stage": STAGE, "file": exc.file,
                 "message": exc.describe()}
                for sid in samples["sample_id"]
            ]  # fmt: skip
            r = []
        rows.extend(r)
        failures.extend(f)
    features = pd.DataFrame(rows)
    return features, pd.DataFrame(failures, columns=list(FAILURE_COLUMNS))


def feature_columns(
    features: pd.DataFrame,
    stats: Iterable[str] = DENSE_STATS,
    sequences: Iterable[str] | None = None,
) -> list[str]:
    """`{seq}__{stat}` columns of a features table for the given statistics (and sequences)."""
    stats = tuple(stats)
    seqs = None if sequences is None else set(sequences)
    out = []
    for col in features.columns:
        seq, sep, stat = col.partition("__")
        if sep and stat in stats and (seqs is None or seq in seqs):
            out.append(col)
    return out
