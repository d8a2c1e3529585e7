"""Habitats stage: apply the population model to one subject/session (map, fractions, overlay)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.habitats.model import (
    HabitatModel,
    SubjectMaps,
    load_models,
    load_subject_maps,
    roi_matrix,
)
from radiogenomics.habitats.plots import plot_overlay
from radiogenomics.io import save_like, write_tsv

log = logging.getLogger(__name__)


@dataclass
class HabitatResult:
    """Habitat map of one subject/session and the model that made it (None when not possible)."""

    codes: np.ndarray  # uint8 volume, 0 outside the ROI or where features were not finite
    model: HabitatModel | None
    reason: str
    inputs_label: str


def majority_filter(codes: np.ndarray, mask: np.ndarray, k: int, iterations: int = 1) -> np.ndarray:
    """Replace each labelled voxel by the most frequent code in its 3x3x3 neighbourhood.

    Only voxels inside `mask` vote and change, so the ROI boundary and the volume outside stay as
    they are. It removes isolated voxels and one-voxel spurs (salt-and-pepper from noise in the
    maps), which shifts small fractions towards the dominant neighbouring habitat; ties keep the
    current code.
    """
    if iterations <= 0 or not mask.any():
        return codes
    sl = ndimage.find_objects(mask.astype(np.uint8))[0]
    pad = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
    sub = codes[pad].copy()
    m = mask[pad]
    for _ in range(iterations):
        counts = np.stack(
            [
                ndimage.uniform_filter(((sub == c) & m).astype(np.float32), size=3, mode="constant")
                for c in range(1, k + 1)
            ]
        )
        best = counts.argmax(axis=0).astype(np.uint8) + 1
        current = np.clip(sub.astype(np.int64) - 1, 0, k - 1)
        # keep the current code when it already ties the best count
        cur_count = np.take_along_axis(counts, current[None], axis=0)[0]
        keep = np.isclose(cur_count, counts.max(axis=0))
        sub = np.where(m, np.where(keep, sub, best), sub).astype(np.uint8)
    out = codes.copy()
    out[pad] = sub
    return out


def choose_model(
    sm: SubjectMaps, models: dict[str, HabitatModel | None]
) -> tuple[HabitatModel | None, str, str]:
    """The model to use for a subject: primary when its maps exist, else the structural fallback."""
    primary, fallback = models.get("primary"), models.get("fallback")
    if primary is not None and sm.primary.available:
        return primary, sm.primary, ""
    if fallback is not None and sm.fallback.available:
        why = (
            sm.primary.reason
            if primary is not None
            else "no primary model (discovery lacks the maps)"
        )
        return fallback, sm.fallback, why
    reasons = (
        "; ".join(r for r in (sm.primary.reason, sm.fallback.reason) if r)
        or "no habitat model available"
    )
    return None, None, reasons


def apply_to_subject(
    sm: SubjectMaps,
    models: dict[str, HabitatModel | None],
    min_roi_voxels: int = 50,
    regularisation: str = "none",
    iterations: int = 1,
) -> HabitatResult:
    """Assign every ROI voxel with finite features to a habitat code (1..k)."""
    codes = np.zeros(sm.roi.shape, np.uint8)
    model, fs, why = choose_model(sm, models)
    if model is None:
        return HabitatResult(codes, None, why, "none")
    label = model.inputs_label()
    if model.kind == "fallback":
        label = f"{label} (fallback: {why})"
    x, valid = roi_matrix(fs, sm.roi)
    if x.shape[0] < min_roi_voxels:
        reason = f"ROI has {x.shape[0]} usable voxels < min_roi_voxels {min_roi_voxels}"
        return HabitatResult(codes, model, reason, label)
    codes[valid] = model.predict(x)
    if regularisation == "majority":
        codes = majority_filter(codes, valid, model.k, iterations)
    elif regularisation != "none":
        raise ValueError(f"unknown habitat regularisation {regularisation!r} (none or majority)")
    return HabitatResult(codes, model, "", label)


def roi_means(sm: SubjectMaps, roi_name: str) -> dict[str, float]:
    """Mean of each normalised primary map inside the ROI (single-parameter comparators)."""
    out = {}
    for m in sm.primary.inputs:
        col = f"habitat__{'nadc' if m == 'adc' else m}__{roi_name}__mean"
        vals = sm.primary.values[m][sm.roi] if m in sm.primary.values else np.array([])
        vals = vals[np.isfinite(vals)]
        out[col] = float(np.mean(vals)) if vals.size else float("nan")
    return out


def fractions_row(
    ids: tuple[str, str, str],
    result: HabitatResult,
    sm: SubjectMaps | None,
    models: dict[str, HabitatModel | None],
    roi_name: str,
) -> pd.DataFrame:
    """One-row fractions table; NaN volumes/fractions and a ``qc_reason`` when not computable."""
    cohort, subject, session = ids
    row: dict[str, object] = {"cohort": cohort, "subject": subject, "session": session}
    model = result.model or models.get("primary") or models.get("fallback")
    names = model.names if model is not None else ()
    assigned = int((result.codes > 0).sum())
    ok = not result.reason and assigned > 0
    voxel_ml = sm.voxel_ml if sm is not None else float("nan")
    for code, n in enumerate(names, start=1):
        count = int((result.codes == code).sum())
        row[f"habitat__{n}__volume_ml"] = count * voxel_ml if ok else float("nan")
        row[f"habitat__{n}__fraction"] = count / assigned if ok else float("nan")
    if sm is not None:
        row.update(roi_means(sm, roi_name))
    row["habitat__inputs"] = result.inputs_label
    row["prov__habitat_roi"] = roi_name
    row["prov__habitat_model"] = (
        f"{model.kind}:{model.method}:k={model.k}" if model is not None else ""
    )
    row["prov__habitat_roi_voxels"] = int(sm.roi.sum()) if sm is not None else 0
    row["qc_reason"] = result.reason
    return pd.DataFrame([row])


def write_subject_outputs(
    result: HabitatResult,
    table: pd.DataFrame,
    sm: SubjectMaps,
    map_path: str | Path,
    fractions_path: str | Path,
) -> None:
    """Habitat map (uint8, input grid and affine) and fractions table, both atomically."""
    save_like(result.codes.astype(np.uint8), sm.reference, map_path, dtype=np.uint8)
    write_tsv(table, fractions_path)


def apply_subject(
    ids: tuple[str, str, str],
    paths: dict[str, str | Path | None],
    model_path: str | Path,
    outputs: dict[str, str | Path],
    roi_name: str = "tumor_core",
    maps: tuple[str, ...] | list[str] = ("adc", "rcbv"),
    fallback_sequences: tuple[str, ...] | list[str] = ("t1ce", "flair"),
    min_roi_voxels: int = 50,
    regularisation: str = "none",
    iterations: int = 1,
    overlay_sequence: str = "t1ce",
) -> pd.DataFrame:
    """Rule entry point: habitat map, fractions row and overlay of one subject/session."""
    models = load_models(model_path)
    sm = load_subject_maps(
        paths["manifest"],
        paths["roi"],
        paths["whole_tumor"],
        paths.get("brain_mask"),
        list(maps),
        list(fallback_sequences),
    )
    result = apply_to_subject(sm, models, min_roi_voxels, regularisation, iterations)
    table = fractions_row(ids, result, sm, models, roi_name)
    write_subject_outputs(result, table, sm, outputs["map"], outputs["fractions"])
    names = result.model.names if result.model is not None else ()
    background = sm.structural.get(overlay_sequence)
    if background is None and sm.structural:
        background = next(iter(sm.structural.values()))
    title = f"{'/'.join(ids)}  {roi_name}  [{result.inputs_label}]" + (
        f"  {result.reason}" if result.reason else ""
    )
    plot_overlay(
        background,
        result.codes,
        names,
        outputs["overlay"],
        title=title,
        spacing=tuple(float(z) for z in sm.reference.header.get_zooms()[:3]),
    )
    log.info(
        "%s: %s",
        "/".join(ids),
        table.drop(columns=["cohort", "subject", "session"]).iloc[0].to_dict(),
    )
    return table
