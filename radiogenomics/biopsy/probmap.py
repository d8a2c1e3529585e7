"""Biopsy stage: per-session probability map of a marker across the tumour.

The final sample-level model (refitted on all training samples) is applied to sphere features
centred on a lattice of voxels (every `stride`-th voxel along each axis) around the tumour. The
features come from `features.dense_sphere_stats` (FFT convolutions over the tumour's bounding
box), so no Python loop runs over voxels. Each tumour voxel takes the value of its lattice point
(i - i % stride, ...); where that point's sphere is unusable (less than `min_fraction` of it in
the mask, at the tumour's edge) the nearest usable centre's value is taken. Voxels outside the
tumour are 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.biopsy.coords import STAGE
from radiogenomics.biopsy.features import (
    SessionImages,
    dense_sphere_stats,
    load_session,
    sphere_kernel,
)
from radiogenomics.biopsy.model import BiopsyModel
from radiogenomics.errors import SubjectError
from radiogenomics.io import save_like


def _crop(region: np.ndarray, margin: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of `region` grown by `margin` voxels per axis (clipped to the grid)."""
    idx = np.argwhere(region)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, region.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def dense_feature_table(
    session: SessionImages, model: BiopsyModel, box: tuple[slice, ...], stride: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Model features at the lattice points of `box` whose sphere is usable, and their indices."""
    params = model.sphere
    mask = session.mask(params)[box]
    kernel = sphere_kernel(session.spacing, params.radius_mm)
    starts = np.array([s.start for s in box])
    lattice = np.zeros(mask.shape, bool)
    first = (-starts) % stride
    lattice[first[0] :: stride, first[1] :: stride, first[2] :: stride] = True
    columns: dict[str, np.ndarray] = {}
    counts = None
    for seq in sorted({f.partition("__")[0] for f in model.features}):
        image = session.images.get(seq)
        if image is None:
            continue
        mean, std, n = dense_sphere_stats(image[box], mask, kernel)
        counts = n if counts is None else counts
        columns[f"{seq}__mean"], columns[f"{seq}__std"] = mean, std
    if counts is None:
        _, _, counts = dense_sphere_stats(np.zeros(mask.shape, np.float32), mask, kernel)
    usable = lattice & (counts / kernel.sum() >= params.min_fraction)
    where = np.argwhere(usable)
    table = pd.DataFrame(
        {f: (columns[f][usable] if f in columns else np.nan) for f in model.features}
    )
    return table, where + starts


def probability_map(
    model: BiopsyModel, session: SessionImages, stride: int = 1, region: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """Probability of the positive class in every tumour voxel (float32 on the prep grid)."""
    if not model.dense_ready():
        raise ValueError(
            f"model features {model.features} include statistics without a dense form; "
            "fit the mapping model with stats=DENSE_STATS"
        )
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    region = session.tumour if region is None else np.asarray(region, bool)
    if region is None or not region.any():
        raise SubjectError("no tumour voxels to map", stage=STAGE, file=session.files.get("tumour"))
    kernel_half = np.array(sphere_kernel(session.spacing, model.sphere.radius_mm).shape) // 2
    box = _crop(region, kernel_half + stride)
    table, ijk = dense_feature_table(session, model, box, stride)
    out = np.zeros(region.shape, np.float32)
    vox = np.argwhere(region)
    n_nearest = 0
    if len(table):
        starts = np.array([s.start for s in box])
        lattice = np.full(tuple(s.stop - s.start for s in box), np.nan, np.float32)
        lattice[tuple((ijk - starts).T)] = model.predict_proba(table).astype(np.float32)
        local = np.clip(vox - vox % stride, starts, None) - starts
        values = lattice[tuple(local.T)]
        # A voxel whose lattice point has no usable sphere (tumour edge) takes the nearest
        # usable centre's value.
        missing = np.isnan(values)
        if missing.any():
            _, nearest = ndimage.distance_transform_edt(
                np.isnan(lattice), sampling=session.spacing, return_indices=True
            )
            src = nearest[(slice(None), *tuple(local[missing].T))]
            values[missing] = lattice[tuple(src)]
            n_nearest = int(missing.sum())
        out[tuple(vox.T)] = values
    else:
        out[tuple(vox.T)] = np.nan
    values = out[region]
    summary = {
        "n_tumour_voxels": int(region.sum()),
        "n_centres": int(len(table)),
        "n_nearest_filled": n_nearest,
        "n_undefined": int(np.isnan(values).sum()),
        "mean_probability": float(np.nanmean(values)) if np.isfinite(values).any() else np.nan,
        "stride": int(stride),
    }
    return out, summary


def write_probability_map(
    model: BiopsyModel, session_dir: str | Path, out_path: str | Path, stride: int = 1
) -> dict:
    """Load a session, map the marker probability over its tumour ROI and save it (NIfTI on the
    prep grid, `save_like` the reference image). Returns the map's summary."""
    session = load_session(
        session_dir, sorted({f.partition("__")[0] for f in model.features}), model.sphere.tumour_roi
    )
    prob, summary = probability_map(model, session, stride)
    save_like(prob, session.reference_img, out_path, dtype=np.float32)
    return summary
