"""Deep learning per marker (cohort stage): tumour-centred multi-channel crops and their cache.

One crop per session: a cube of `size`^3 voxels at `spacing_mm`, axis-aligned in the session's RAS
world space and centred on the centre of mass of an ROI (default the whole tumour). Channels are
the configured preprocessed sequences/maps (`prep/{seq}.nii.gz`, z-scored inside the brain mask
of that session, clipped, 0 outside the brain) followed by optional ROI masks (partial-volume
fractions in [0, 1]). Array axes are (channel, i, j, k) with world = `affine` @ (i, j, k, 1).

`build_crop_set` reads every session once and records a bad session as a failure row, so one
bad session never costs the others; `save_crop_set`/`load_crop_set` keep the result as one .npz
(ids + array + channel names + settings hash) for the cohort stage.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.errors import ConfigError, SubjectError
from radiogenomics.io import atomic_path, load_nifti, read_json
from radiogenomics.paths import RESULTS, failure_marker, subject_dir

STAGE = "cnn_crops"
# Same columns as results/qc/failures.tsv (radiogenomics.cohort.aggregate); defined here so the
# model library does not import the cohort stage that uses it.
ID_COLUMNS = ["cohort", "subject", "session"]
FAILURE_COLUMNS = [*ID_COLUMNS, "stage", "file", "message"]
# Bump when the crop arithmetic changes: cached arrays of an older version are then rebuilt.
CROP_VERSION = 1
META_COLUMNS = ["centre_x_mm", "centre_y_mm", "centre_z_mm", "roi_voxels", "roi_inside_crop"]


@dataclass(frozen=True)
class CropSettings:
    """What a crop is: channels, ROI-mask channels, centring ROI, spacing, edge length, clip."""

    channels: tuple[str, ...] = ("t1ce", "flair", "adc", "rcbv")
    roi_channels: tuple[str, ...] = ()
    centre_roi: str = "whole_tumor"
    # 24^3 voxels of 4 mm (a 96 mm cube, the demo's largest tumour plus oedema) fit the nested CV
    # into the demo's CPU budget; 32^3 at 3 mm gave the same IDH AUC at twice the CPU time.
    spacing_mm: float = 4.0
    size: int = 24
    clip_z: float = 5.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> CropSettings:
        """From a cnn strategy's keys: channels, roi_channels, centre_roi, crop_mm, crop_size."""
        d = cls()
        s = cls(
            channels=tuple(cfg.get("channels", d.channels)),
            roi_channels=tuple(cfg.get("roi_channels", d.roi_channels)),
            centre_roi=str(cfg.get("centre_roi", d.centre_roi)),
            spacing_mm=float(cfg.get("crop_mm", d.spacing_mm)),
            size=int(cfg.get("crop_size", d.size)),
            clip_z=float(cfg.get("clip_z", d.clip_z)),
        )
        if not s.channels:
            raise ConfigError("cnn strategy: `channels` is empty (name at least one sequence)")
        if s.size < 8 or s.spacing_mm <= 0:
            raise ConfigError(f"cnn strategy: crop_size {s.size} (>= 8) / crop_mm {s.spacing_mm}")
        return s

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Channel names of the array: sequences, then `roi:{name}` masks."""
        return self.channels + tuple(f"roi:{r}" for r in self.roi_channels)

    @property
    def mask_channels(self) -> tuple[int, ...]:
        """Indices of the ROI-mask channels (no intensity augmentation on them)."""
        return tuple(range(len(self.channels), len(self.channel_names)))

    def digest(self) -> str:
        """Stable hash of the settings and the crop version (a cache key)."""
        blob = json.dumps({**asdict(self), "version": CROP_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Crop:
    """One session's crop: (channels, size, size, size) float32, its affine and facts about it."""

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, float] = field(default_factory=dict)


def crop_affine(centre_mm: np.ndarray, spacing_mm: float, size: int) -> np.ndarray:
    """RAS affine of a cube of `size`^3 voxels of `spacing_mm` centred on `centre_mm`."""
    aff = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    aff[:3, 3] = np.asarray(centre_mm, float) - spacing_mm * (size - 1) / 2.0
    return aff


def _grid_world(affine: np.ndarray, size: int) -> np.ndarray:
    """World coordinates (3, size^3) of every crop voxel, C order."""
    idx = np.indices((size, size, size), dtype=float).reshape(3, -1)
    return affine[:3, :3] @ idx + affine[:3, 3:4]


def _to_voxels(world: np.ndarray, affine: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(affine)
    return inv[:3, :3] @ world + inv[:3, 3:4]


def zscore_in_brain(data: np.ndarray, brain: np.ndarray, clip: float) -> np.ndarray:
    """(x - mean) / sd over brain voxels, clipped to +-clip, 0 outside the brain (float32)."""
    vals = data[brain]
    sd = float(vals.std())
    if not np.isfinite(sd) or sd <= 0:
        raise ValueError("constant or non-finite inside the brain mask")
    z = np.clip((data - float(vals.mean())) / sd, -clip, clip)
    return np.where(brain, z, 0.0).astype(np.float32)


def sample(
    volume: np.ndarray, vol_affine: np.ndarray, world: np.ndarray, size: int, out_mm: float = 0.0
) -> np.ndarray:
    """Trilinear samples of `volume` at world points (0 outside), prefiltered to `out_mm`."""
    if out_mm > 0:
        # Gaussian with the FWHM that turns the image's voxel into the crop's: no aliasing.
        in_mm = np.sqrt((vol_affine[:3, :3] ** 2).sum(axis=0))
        ratio = np.maximum(out_mm / in_mm, 1.0)
        sigma = np.sqrt(ratio**2 - 1.0) / 2.3548
        if np.any(sigma > 0.05):
            volume = ndimage.gaussian_filter(volume, sigma, mode="constant", truncate=3.0)
    vox = _to_voxels(world, vol_affine)
    out = ndimage.map_coordinates(volume, vox, order=1, mode="constant", cval=0.0)
    return out.reshape(size, size, size).astype(np.float32)


def _who(ids: Mapping[str, str]) -> dict[str, str]:
    return {k: str(ids.get(k, "")) for k in ("cohort", "subject", "session")}


def session_crop(
    sd: str | Path,
    settings: CropSettings,
    ids: Mapping[str, str] | None = None,
    centre_mm: np.ndarray | None = None,
) -> Crop:
    """Crop of one session directory (`{results}/{cohort}/sub-{s}/ses-{t}`); SubjectError if bad.

    The centre is the centre of mass of `settings.centre_roi` unless `centre_mm` is given.
    """
    sd = Path(sd)
    who = _who(ids or {})
    err = {"stage": STAGE, **who}
    manifest_path = sd / "prep" / "manifest.json"
    if not manifest_path.is_file() or manifest_path.stat().st_size == 0:
        raise SubjectError("preprocessing manifest not found or empty", file=manifest_path, **err)
    manifest = read_json(manifest_path)
    seqs = manifest.get("sequences") or {}
    absent = [c for c in settings.channels if c not in seqs]
    if absent:
        why = {c: (manifest.get("missing") or {}).get(c, "not listed") for c in absent}
        raise SubjectError(
            f"configured channel(s) {absent} not among the session's preprocessed images "
            f"{sorted(seqs)} (manifest: {why})",
            file=manifest_path,
            **err,
        )
    brain_path = sd / "prep" / str(manifest.get("brain_mask", "brain_mask.nii.gz"))
    brain_img = load_nifti(brain_path, stage=STAGE, what="brain mask")
    brain = np.asarray(brain_img.dataobj) > 0
    if brain.sum() < 100:
        raise SubjectError(f"brain mask has {int(brain.sum())} voxels", file=brain_path, **err)

    roi_path = sd / "seg" / "rois" / f"{settings.centre_roi}.nii.gz"
    roi_img = load_nifti(roi_path, stage=STAGE, what=f"ROI mask {settings.centre_roi}")
    roi = np.asarray(roi_img.dataobj) > 0
    n_roi = int(roi.sum())
    if centre_mm is None:
        if n_roi == 0:
            raise SubjectError(
                f"ROI {settings.centre_roi} is empty: no tumour to centre the crop on",
                file=roi_path,
                **err,
            )
        com = np.array(ndimage.center_of_mass(roi))
        centre_mm = roi_img.affine[:3, :3] @ com + roi_img.affine[:3, 3]
    centre_mm = np.asarray(centre_mm, float)
    aff = crop_affine(centre_mm, settings.spacing_mm, settings.size)
    world = _grid_world(aff, settings.size)

    channels = []
    for name in settings.channels:
        path = sd / "prep" / str(seqs[name])
        img = load_nifti(path, stage=STAGE, what=f"channel {name}")
        if img.shape != brain.shape or not np.allclose(img.affine, brain_img.affine, atol=1e-3):
            raise SubjectError(
                f"channel {name} grid {img.shape} differs from the brain mask's {brain.shape} "
                f"({brain_path}); preprocessed images share one grid",
                file=path,
                **err,
            )
        c = _to_voxels(centre_mm[:, None], img.affine)[:, 0]
        if np.any(c < -0.5) or np.any(c > np.array(img.shape) - 0.5):
            raise SubjectError(
                f"crop centre {np.round(centre_mm, 1).tolist()} mm (voxel "
                f"{np.round(c, 1).tolist()}) lies outside the image of shape {img.shape}"
                f" (centre from {roi_path.name}: ROI and images in different spaces?)",
                file=path,
                **err,
            )
        data = np.asarray(img.dataobj, dtype=np.float32)
        finite = np.isfinite(data)
        try:
            z = zscore_in_brain(np.where(finite, data, 0.0), brain & finite, settings.clip_z)
        except ValueError as exc:
            raise SubjectError(f"channel {name}: {exc}", file=path, **err) from exc
        channels.append(sample(z, img.affine, world, settings.size, settings.spacing_mm))
    for name in settings.roi_channels:
        path = sd / "seg" / "rois" / f"{name}.nii.gz"
        mimg = load_nifti(path, stage=STAGE, what=f"ROI mask {name}")
        mask = (np.asarray(mimg.dataobj) > 0).astype(np.float32)
        channels.append(sample(mask, mimg.affine, world, settings.size))

    # Share of the centring ROI's voxels that fall inside the crop (QC: is the crop too small?).
    inside = 1.0
    if n_roi:
        pts = roi_img.affine[:3, :3] @ np.argwhere(roi).T + roi_img.affine[:3, 3:4]
        v = _to_voxels(pts, aff)
        ok = np.all((v >= -0.5) & (v <= settings.size - 0.5), axis=0)
        inside = float(ok.mean())
    meta = dict(zip(META_COLUMNS[:3], map(float, centre_mm), strict=True))
    meta.update(roi_voxels=float(n_roi), roi_inside_crop=inside)
    return Crop(array=np.stack(channels), affine=aff, meta=meta)


class CropArray(np.ndarray):
    """A crop array that also answers `.iloc[rows]`, the row indexing `cohort.models` uses."""

    def __new__(cls, array: np.ndarray) -> CropArray:
        return np.asarray(array).view(cls)

    @property
    def iloc(self) -> _RowIndexer:
        """Rows by position, like a DataFrame's `.iloc`."""
        return _RowIndexer(self)


class _RowIndexer:
    def __init__(self, array: CropArray) -> None:
        self.array = array

    def __getitem__(self, rows) -> CropArray:
        return self.array[rows]


@dataclass
class CropSet:
    """Crops of many sessions: ids (cohort, subject, session), (n, c, s, s, s) array, affines."""

    ids: pd.DataFrame
    array: np.ndarray
    affines: np.ndarray
    channels: tuple[str, ...]
    settings_hash: str
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, cohort: str, subject: str, session: str) -> int:
        """Row index of one session; KeyError when it has no crop."""
        hit = np.flatnonzero(
            (self.ids["cohort"] == str(cohort)).to_numpy()
            & (self.ids["subject"] == str(subject)).to_numpy()
            & (self.ids["session"] == str(session)).to_numpy()
        )
        if not len(hit):
            raise KeyError(f"no crop for {cohort}/{subject}/{session}")
        return int(hit[0])

    def take(self, ids: pd.DataFrame) -> tuple[CropArray, np.ndarray]:
        """Rows in the order of `ids` (columns cohort, subject, session) and a found-mask.

        Sessions without a crop become NaN rows: CNNClassifier leaves them out of training and
        predicts its training prevalence for them, so the rows (and folds) stay those of the
        other strategies.
        """
        key = self.ids[ID_COLUMNS].astype(str).agg("/".join, axis=1)
        pos = pd.Series(np.arange(len(key)), index=key.to_numpy())
        want = ids[ID_COLUMNS].astype(str).agg("/".join, axis=1).to_numpy()
        found = np.isin(want, key.to_numpy())
        out = np.full((len(want), *self.array.shape[1:]), np.nan, dtype=self.array.dtype)
        if found.any():
            out[found] = self.array[pos.loc[want[found]].to_numpy()]
        return CropArray(out), found


def build_crop_set(
    sessions: pd.DataFrame | Iterable[tuple[str, str, str]],
    settings: CropSettings,
    root: str | Path = RESULTS,
) -> tuple[CropSet, pd.DataFrame]:
    """Crops of every session (rows with cohort, subject, session) and one failure row per bad one.

    A session whose earlier step failed (`qc/failure.json`) or whose crop raises SubjectError is
    listed in the failures (columns of results/qc/failures.tsv) and left out of the set.
    """
    if isinstance(sessions, pd.DataFrame):
        rows = list(sessions[ID_COLUMNS].astype(str).itertuples(index=False, name=None))
    else:
        rows = [tuple(map(str, r)) for r in sessions]
    ids, arrays, affines, metas, failures = [], [], [], [], []
    for cohort, subject, session in rows:
        sd = subject_dir(cohort, subject, session, root)
        marker = failure_marker(sd)
        if marker.is_file():
            failures.append(
                [cohort, subject, session, STAGE, str(marker), "an earlier step failed"]
            )
            continue
        try:
            crop = session_crop(
                sd, settings, {"cohort": cohort, "subject": subject, "session": session}
            )
        except SubjectError as exc:
            failures.append([cohort, subject, session, STAGE, exc.file, exc.describe()])
            continue
        ids.append((cohort, subject, session))
        arrays.append(crop.array)
        affines.append(crop.affine)
        metas.append(crop.meta)
    n_ch, s = len(settings.channel_names), settings.size
    cs = CropSet(
        ids=pd.DataFrame(ids, columns=ID_COLUMNS, dtype=str),
        array=np.stack(arrays) if arrays else np.zeros((0, n_ch, s, s, s), np.float32),
        affines=np.stack(affines) if affines else np.zeros((0, 4, 4)),
        channels=settings.channel_names,
        settings_hash=settings.digest(),
        meta=pd.concat(
            [pd.DataFrame(ids, columns=ID_COLUMNS), pd.DataFrame(metas, columns=META_COLUMNS)],
            axis=1,
        ),
    )
    return cs, pd.DataFrame(failures, columns=FAILURE_COLUMNS)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def save_crop_set(cs: CropSet, path: str | Path) -> None:
    """Write a CropSet as .npz, atomically, byte-identical for identical content."""
    members = {
        "ids": cs.ids[ID_COLUMNS].to_numpy(dtype=str).reshape(-1, 3),
        "array": cs.array.astype(np.float32, copy=False),
        "affines": cs.affines.astype(np.float64, copy=False),
        "channels": np.array(cs.channels, dtype=str),
        "settings_hash": np.array([cs.settings_hash]),
        "meta": cs.meta[META_COLUMNS].to_numpy(dtype=np.float64).reshape(-1, len(META_COLUMNS)),
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in members.items():
            # A fixed timestamp: np.savez stamps the current time, so reruns would differ.
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                        _npy_bytes(arr))  # fmt: skip


def load_crop_set(path: str | Path, settings: CropSettings | None = None) -> CropSet:
    """Read a CropSet; with `settings`, a cache built with other settings raises ConfigError."""
    with np.load(path, allow_pickle=False) as z:
        ids = pd.DataFrame(z["ids"].reshape(-1, 3), columns=ID_COLUMNS).astype(str)
        cs = CropSet(
            ids=ids,
            array=z["array"],
            affines=z["affines"],
            channels=tuple(str(c) for c in z["channels"]),
            settings_hash=str(z["settings_hash"].reshape(-1)[0]),
            meta=pd.concat([ids, pd.DataFrame(z["meta"], columns=META_COLUMNS)], axis=1),
        )
    if settings is not None and cs.settings_hash != settings.digest():
        raise ConfigError(
            f"{path}: crops built with settings {cs.settings_hash}, not {settings.digest()} "
            "(stale cache: rebuild it)"
        )
    return cs
