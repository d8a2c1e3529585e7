"""Features stage: per-subject tables (lesion_wide, histogram, radiomics, mismatch, location,
peritumoral_heterogeneity).

The `run_*` functions are what the rule scripts call: they take the subject's input paths, the
validated `features` config section and the output path(s), and write one-row tables (plus the
long-format `perturbed.tsv` robustness table). Expected bad input gives NaN + `qc_reason`; only
unreadable files raise `SubjectError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.config import section_defaults
from radiogenomics.features import (
    histogram,
    lesion_wide,
    location,
    mismatch,
    peritumoral_heterogeneity,
    radiomics,
)
from radiogenomics.features.common import (
    QC,
    Ids,
    Rois,
    feature_row,
    load_rois,
    load_volume,
    perturb_rois,
    read_manifest,
    same_grid,
    sequence_paths,
)
from radiogenomics.io import write_tsv

PERTURBATIONS = ("erode1", "dilate1")


def settings(cfg: Mapping | None) -> dict:
    """The `features` config section with the schema's defaults filled in."""
    return section_defaults("features", dict(cfg or {}))


def _subject(
    manifest_path: str | Path, roi_paths: Mapping[str, str | Path], cfg: dict, out: str | Path
):
    """Common opening of every runner: ids, QC, manifest, sequences, ROIs."""
    if cfg.get("rois"):
        roi_paths = {r: roi_paths[r] for r in cfg["rois"] if r in roi_paths}
    ids = Ids.from_path(out)
    qc = QC(ids.who())
    manifest = read_manifest(manifest_path)
    seq_paths = sequence_paths(manifest, manifest_path)
    rois = load_rois(roi_paths, int(cfg["min_roi_voxels"]))
    return ids, qc, manifest, seq_paths, rois


def _brain(brain_path: str | Path | None, rois: Rois, qc: QC) -> np.ndarray | None:
    """Brain mask on the ROI grid, or None (with a reason) when missing or on another grid."""
    if brain_path is None:
        return None
    arr, aff = load_volume(brain_path, what="brain mask")
    if not same_grid(arr.shape, aff, rois.shape, rois.affine):
        qc.add("brain mask grid does not match the ROI grid", brain_path)
        return None
    return np.nan_to_num(arr) > 0.5


def _base_prov(manifest_path: str | Path, cfg: dict) -> dict:
    """Provenance shared by all families."""
    return {"manifest": str(manifest_path), "min_roi_voxels": int(cfg["min_roi_voxels"])}


def run_lesion_wide(manifest_path, roi_paths, out, cfg=None) -> pd.DataFrame:
    """Write `features/lesion_wide.tsv`."""
    cfg = settings(cfg)
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    feats = lesion_wide.extract_lesion_wide(cfg["maps"], seq_paths, manifest, rois, qc)
    df = feature_row(ids, feats, _base_prov(manifest_path, cfg), qc)
    write_tsv(df, out)
    return df


def run_histogram(manifest_path, roi_paths, out, cfg=None) -> pd.DataFrame:
    """Write `features/histogram.tsv`."""
    cfg = settings(cfg)
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    h = cfg["histogram"]
    feats = histogram.extract_histogram(
        cfg["sequences"], seq_paths, manifest, rois, qc, h["percentiles"], int(h["bins"])
    )
    prov = _base_prov(manifest_path, cfg) | {"histogram_bins": int(h["bins"])}
    df = feature_row(ids, feats, prov, qc)
    write_tsv(df, out)
    return df


def run_radiomics(manifest_path, roi_paths, brain_path, out, out_perturbed=None, cfg=None):
    """Write `features/radiomics.tsv` (and the radiomics part of the robustness table)."""
    cfg = settings(cfg)
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    brain = _brain(brain_path, rois, qc)
    pert = cfg["perturbation"]
    do_pert = bool(pert["enabled"] and pert.get("radiomics", True) and out_perturbed)
    feats, prov, long_rows = radiomics.extract_radiomics(
        cfg["sequences"],
        seq_paths,
        manifest,
        rois,
        qc,
        cfg["radiomics_params"],
        zscore_seqs=cfg["maps"] if cfg["radiomics_zscore_maps"] else (),
        brain=brain,
        perturb=pert["rois"] if do_pert else (),
        perturbations=PERTURBATIONS if do_pert else (),
        min_voxels=int(cfg["min_roi_voxels"]),
    )
    df = feature_row(ids, feats, _base_prov(manifest_path, cfg) | prov, qc)
    write_tsv(df, out)
    if out_perturbed:
        write_tsv(long_table(ids, long_rows), out_perturbed)
    return df


def long_table(ids: Ids, rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Long robustness table: cohort, subject, session, perturbation, feature, value."""
    df = pd.DataFrame(rows, columns=["perturbation", "feature", "value"])
    for i, col in enumerate(("cohort", "subject", "session")):
        df.insert(i, col, getattr(ids, col))
    return df


def run_perturbed(manifest_path, roi_paths, brain_path, out, radiomics_long=None, cfg=None):
    """Write `features/perturbed.tsv`: lesion_wide + histogram (+ radiomics) on perturbed ROIs."""
    cfg = settings(cfg)
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    brain = _brain(brain_path, rois, qc)
    keep = [r for r in cfg["perturbation"]["rois"] if r in rois.masks]
    h = cfg["histogram"]
    rows: list[tuple[str, str, float]] = []
    for how in ("original",) + PERTURBATIONS:
        prois = perturb_rois(rois, how, int(cfg["min_roi_voxels"]), keep, brain)
        feats = lesion_wide.extract_lesion_wide(cfg["maps"], seq_paths, manifest, prois, qc)
        feats.update(
            histogram.extract_histogram(
                cfg["sequences"], seq_paths, manifest, prois, qc, h["percentiles"], int(h["bins"])
            )
        )
        rows += [(how, k, v) for k, v in feats.items()]
    df = long_table(ids, rows)
    if radiomics_long and Path(radiomics_long).stat().st_size > 0:
        df = pd.concat(
            [df, pd.read_csv(radiomics_long, sep="\t", dtype={"subject": str, "session": str})]
        )
    write_tsv(df, out)
    return df


def run_mismatch(manifest_path, roi_paths, brain_path, out, cfg=None) -> pd.DataFrame:
    """Write `features/mismatch.tsv`."""
    cfg = settings(cfg) | {"rois": ["whole_tumor", "enhancing", "peritumoral_near"]}
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    params = mismatch.MismatchParams.from_config(cfg["mismatch"])
    values = None
    brain = _brain(brain_path, rois, qc)
    needed = {"whole_tumor", "enhancing", "peritumoral_near"}
    vols = {}
    for seq in ("t2", "flair"):
        if seq not in seq_paths:
            qc.add(f"{seq} not available: mismatch not measured")
            continue
        arr, aff = load_volume(seq_paths[seq], what=seq)
        if not same_grid(arr.shape, aff, rois.shape, rois.affine):
            qc.add(f"{seq} grid does not match the ROI grid: mismatch not measured", seq_paths[seq])
        elif not np.isfinite(arr).all():
            qc.add(f"non-finite voxels in {seq}: mismatch not measured", seq_paths[seq])
        else:
            vols[seq] = arr
    bad_roi = [
        r
        for r in needed
        if rois.masks.get(r) is None or (r == "whole_tumor" and r in rois.problems)
    ]
    for r in bad_roi:
        qc.add(
            rois.problems.get(r, f"ROI {r} unusable") + ": mismatch not measured", rois.paths.get(r)
        )
    if brain is None:
        qc.add("brain mask unusable: mismatch not measured", brain_path)
    if len(vols) == 2 and not bad_roi and brain is not None:
        whole = rois.masks["whole_tumor"]
        normal = brain & ~whole & ~rois.masks["peritumoral_near"]
        values = mismatch.measure_mismatch(
            vols["t2"], vols["flair"], whole, rois.masks["enhancing"], normal, rois.affine, params
        )
    prov = _base_prov(manifest_path, cfg) | {f"mismatch_{k}": v for k, v in vars(params).items()}
    df = feature_row(ids, mismatch.mismatch_features(values), prov, qc)
    write_tsv(df, out)
    return df


def run_peritumoral_heterogeneity(manifest_path, roi_paths, out, cfg=None) -> pd.DataFrame:
    """Write `features/peritumoral_heterogeneity.tsv` (PHI of a raw DSC series; NaN without)."""
    cfg = settings(cfg)
    ids, qc, _, _, _ = _subject(manifest_path, roi_paths, cfg, out)
    sd = Path(out).parent.parent
    feats = peritumoral_heterogeneity.measure_session(sd, roi_paths, qc)
    df = feature_row(ids, feats, _base_prov(manifest_path, cfg), qc)
    write_tsv(df, out)
    return df


def default_point_mapper(files: list[str]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Subject mm -> MNI mm through the preprocessing stage's atlas transform files: the affine
    `.mat`, plus the inverse warp after SyN (None if a file is absent or empty)."""
    try:
        from radiogenomics.imaging.atlas import subject_to_mni_points
    except ImportError:
        return None
    if not all(Path(f).exists() and Path(f).stat().st_size > 0 for f in files):
        return None
    return lambda pts: np.asarray(subject_to_mni_points(pts, files), dtype=float)


def run_location(manifest_path, roi_paths, brain_path, transform, out, cfg=None, to_mni=None):
    """Write `features/location.tsv`. `transform`: the atlas affine `.mat`, or a list that adds
    the inverse warp after SyN; `to_mni` overrides the atlas mapping (e.g. in tests)."""
    cfg = settings(cfg) | {"rois": list(location.MORPHOLOGY_ROIS)}
    ids, qc, manifest, seq_paths, rois = _subject(manifest_path, roi_paths, cfg, out)
    brain = _brain(brain_path, rois, qc)
    files = [str(f) for f in (transform if isinstance(transform, list | tuple) else [transform])]
    masks = {r: (m if m is not None else np.zeros(rois.shape, bool)) for r, m in rois.masks.items()}
    for roi, why in rois.problems.items():
        if rois.masks.get(roi) is None:
            qc.add(why, rois.paths.get(roi))
    mapper = to_mni if to_mni is not None else default_point_mapper(files)
    feats, reasons = location.extract_location(
        masks, brain, rois.affine, mapper, location.LocationParams.from_config(cfg["location"])
    )
    for why in reasons:
        qc.add(why)
    prov = _base_prov(manifest_path, cfg) | {"transform": ";".join(files)}
    df = feature_row(ids, feats, prov, qc)
    write_tsv(df, out)
    return df
