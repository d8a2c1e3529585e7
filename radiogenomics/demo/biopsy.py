"""Demo cohort generator (foundation stage): intratumoural EGFR amplification and biopsies.

EGFR amplification is spatially heterogeneous within a glioblastoma, and amplified regions show
higher perfusion (rCBV; the review also names PH and PSR) and lower diffusion (ADC, higher
cellularity). For an amplified subject a smooth random field in [0, 1] is planted inside the
tumour region: the amplified sub-region (field >= 0.5) holds a chosen fraction of the region's
voxels, with a smooth transition of `edge_mm` around it. The maps are changed multiplicatively,
rCBV x exp(rcbv_log_gain * field) and ADC x exp(adc_log_gain * field). A non-amplified subject's
field is 0 everywhere. Biopsies (2-5 per subject) are drawn inside the region, alternating
between the amplified and the non-amplified parts when both exist (as a surgeon samples
enhancing and non-enhancing tumour), at least `min_distance_mm` apart; each sample's label is
the field at its (off-grid) point, interpolated trilinearly, >= 0.5.

Pure functions of arrays and a numpy Generator, so the generator can call them between
`tumour_maps` and `render_sequence` (see `plant_egfr_biopsies`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

AMPLIFIED, NOT_AMPLIFIED = "amplified", "not_amplified"
MARKER = "egfr_amplification"
# Truth-only columns of the sample table: drop them before writing the pipeline's input table.
TRUTH_COLUMNS = ("field_value",)
SAMPLE_COLUMNS = ("subject", "session", "sample_id", "x", "y", "z", "space", "sequence")


@dataclass(frozen=True)
class EgfrPlant:
    """Strength and geometry of the planted heterogeneity (defaults: a clear but noisy effect)."""

    fraction_low: float = 0.3  # amplified fraction of the region, drawn per subject
    fraction_high: float = 0.6
    smooth_mm: float = 8.0  # spatial scale of the amplified blobs
    edge_mm: float = 3.0  # width of the field's transition around the amplified border
    rcbv_log_gain: float = 0.8  # rCBV x 2.2 in fully amplified tissue
    adc_log_gain: float = -0.15  # ADC x 0.86
    n_min: int = 2
    n_max: int = 5
    min_distance_mm: float = 8.0
    margin_mm: float = 2.0  # samples at least this far inside the region's border


def _spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths (mm)."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def egfr_field(
    region: np.ndarray,
    affine: np.ndarray,
    rng: np.random.Generator,
    amplified: bool,
    plant: EgfrPlant = EgfrPlant(),
) -> tuple[np.ndarray, float]:
    """(field in [0, 1], planned amplified fraction); 0 outside `region` and if not amplified."""
    field = np.zeros(region.shape, np.float32)
    if not amplified or not region.any():
        return field, 0.0
    fraction = float(rng.uniform(plant.fraction_low, plant.fraction_high))
    sp = _spacing(affine)
    pad = np.ceil(3 * plant.smooth_mm / sp).astype(int)
    idx = np.argwhere(region)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, region.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    noise = rng.standard_normal(tuple(int(b - a) for a, b in zip(lo, hi, strict=True)))
    g = ndimage.gaussian_filter(noise, plant.smooth_mm / sp)
    inside = region[box]
    g = (g - g[inside].mean()) / (g[inside].std() + 1e-12)
    # Threshold at the region's (1 - fraction) quantile: exactly `fraction` of it is >= 0.5.
    t = float(np.quantile(g[inside], 1.0 - fraction))
    # Logistic edge: g changes by ~1 sd over smooth_mm, so edge_mm/smooth_mm sd is the width.
    width = max(plant.edge_mm / plant.smooth_mm, 1e-3)
    f = 1.0 / (1.0 + np.exp(-(g - t) / width))
    field[box] = np.where(inside, f, 0.0).astype(np.float32)
    return field, fraction


def apply_egfr_effect(
    maps: Mapping[str, np.ndarray], field: np.ndarray, plant: EgfrPlant = EgfrPlant()
) -> dict[str, np.ndarray]:
    """New map arrays: rCBV and ADC scaled by the field; other maps copied unchanged."""
    gains = {"rcbv": plant.rcbv_log_gain, "adc": plant.adc_log_gain}
    out = {}
    for name, values in maps.items():
        arr = np.asarray(values)
        if name in gains:
            out[name] = (arr * np.exp(gains[name] * field)).astype(arr.dtype)
        else:
            out[name] = arr.copy()
    return out


def draw_biopsies(
    field: np.ndarray,
    region: np.ndarray,
    affine: np.ndarray,
    rng: np.random.Generator,
    subject: str,
    session: str = "01",
    plant: EgfrPlant = EgfrPlant(),
) -> pd.DataFrame:
    """2-5 samples in scanner RAS mm with their EGFR amplification label (truth: field_value)."""
    if not region.any():
        return pd.DataFrame(columns=[*SAMPLE_COLUMNS, MARKER, *TRUTH_COLUMNS])
    sp = _spacing(affine)
    depth = ndimage.distance_transform_edt(region, sampling=sp)
    candidates = np.argwhere(depth >= plant.margin_mm)
    if len(candidates) == 0:
        candidates = np.argwhere(region)
    n = int(rng.integers(plant.n_min, plant.n_max + 1))
    amp = field[tuple(candidates.T)] >= 0.5
    pools = [candidates[amp], candidates[~amp]]
    pools = [p for p in pools if len(p)]
    order = rng.permutation(len(pools))
    chosen: list[tuple[np.ndarray, np.ndarray]] = []
    for attempt in range(50 * n):
        if len(chosen) == n:
            break
        pool = pools[order[len(chosen) % len(pools)]]
        ijk = pool[rng.integers(len(pool))] + rng.uniform(-0.5, 0.5, 3)
        world = affine[:3, :3] @ ijk + affine[:3, 3]
        too_close = any(np.linalg.norm(world - w) < plant.min_distance_mm for _, w in chosen)
        # Relax the spacing rule late so small tumours still get their samples.
        if too_close and attempt < 40 * n:
            continue
        chosen.append((ijk, world))
    rows = []
    for k, (ijk, world) in enumerate(chosen, start=1):
        value = float(ndimage.map_coordinates(field, ijk.reshape(3, 1), order=1)[0])
        rows.append(
            {
                "subject": subject,
                "session": session,
                "sample_id": f"{subject}-B{k}",
                "x": round(float(world[0]), 3),
                "y": round(float(world[1]), 3),
                "z": round(float(world[2]), 3),
                "space": "scanner_ras",
                "sequence": "",
                MARKER: AMPLIFIED if value >= 0.5 else NOT_AMPLIFIED,
                "field_value": round(value, 6),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class BiopsyPlant:
    """One session's planted truth: the field, the modified maps and the biopsy samples."""

    field: np.ndarray
    fraction: float
    maps: dict[str, np.ndarray]
    samples: pd.DataFrame


def plant_egfr_biopsies(
    labels: np.ndarray,
    maps: Mapping[str, np.ndarray],
    affine: np.ndarray,
    rng: np.random.Generator,
    amplified: bool,
    subject: str,
    session: str = "01",
    region_labels: tuple[int, ...] = (1, 3),
    plant: EgfrPlant = EgfrPlant(),
    region: np.ndarray | None = None,
) -> BiopsyPlant:
    """Field in the tumour core (BraTS labels in `region_labels`), maps with the effect, samples.

    Generator use: `p = plant_egfr_biopsies(tum.labels, maps, anat.affine, rng,
    row["egfr"] == "amplified", subject, session)` after `tumour_maps`, then render with
    `p.maps`; write `p.samples` without TRUTH_COLUMNS as the biopsy table and `p.field` as truth.
    """
    # `region` (e.g. the viable tumour) overrides the BraTS labels in `region_labels`.
    region = np.isin(labels, region_labels) if region is None else np.asarray(region, bool)
    field, fraction = egfr_field(region, affine, rng, amplified, plant)
    return BiopsyPlant(
        field=field,
        fraction=fraction,
        maps=apply_egfr_effect(maps, field, plant),
        samples=draw_biopsies(field, region, affine, rng, subject, session, plant),
    )
