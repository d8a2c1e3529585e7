"""Physiologic maps (first step of preprocess_subject): raw acquisitions -> `maps/` + a manifest.

Reads the intake manifest (`anat/manifest.json`, its `acquisitions`), computes the maps of each
raw acquisition with `radiogenomics.physiology.session` into `{sd}/maps/` (on the acquisition's
grid, each with its JSON), and writes `maps/manifest.json`: the intake manifest's sequences (as
`../anat/...`) plus the computed maps the config uses (`sequences.optional_maps`), so they follow
the path of provided maps (co-registration, normalisation, features, habitats).

rCBV and rCBF reference: the WM mask of the preprocessing chain exists only after co-registration
and the atlas step, in the reference space. So `maps/rcbv` is CBV over its median in the DSC
series' own head mask (a robust whole-brain reference, recorded in rcbv.json), and the
normalisation step then divides it, like a provided rCBV, by its median in contralateral
normal-appearing WM (template WM minus the crude abnormality mask): the final `prep/rcbv` is
WM-referenced either way. `rcbf` is built the same way from CBF (oSVD underestimates absolute
CBF; the ratio cancels that scale).

DCE (when the session has one and a DCE map is asked for in the maps config): extended Tofts with
the population (Parker) AIF and an assumed T10 (`dce.T10_ASSUMED_S`), both recorded as warnings
in the maps' JSON: Ktrans and vp then carry the AIF's scale, ve and kep less so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.common import read_manifest, sequence_paths
from radiogenomics.io import load_nifti, read_json, save_like, write_json
from radiogenomics.physiology import dsc
from radiogenomics.physiology.session import dce_session, dsc_session, dwi_session

log = logging.getLogger(__name__)
STAGE = "physiology"
# Maps each raw kind can give (the rest of a kind's outputs stay in maps/ only).
DSC_MAPS = ("rcbv", "rcbf", "cbv", "cbf", "mtt", "k2", "ph", "psr")
DWI_MAPS = ("adc", "ivim_d", "ivim_f", "ivim_dstar", "fa", "md")
DTI_MAPS = ("fa", "md")
DCE_MAPS = ("ktrans", "ve", "vp", "kep")
KIND_MAPS = {"dsc": DSC_MAPS, "dwi": DWI_MAPS, "dti": DTI_MAPS, "dce": DCE_MAPS}


def brain_relative(out_dir: Path, source: str = "cbv", min_voxels: int = 100) -> dict:
    """Write `r{source}` = `source` (CBV or CBF) / its median over the head mask (values > 0)."""
    path = out_dir / f"{source}.nii.gz"
    img = load_nifti(path, stage=STAGE, what=f"computed {source.upper()}")
    values = np.asarray(img.dataobj, np.float64)
    # dsc_session writes 0 outside its head mask; negative CBV (noise, residual leakage) is kept
    # in the map but cannot anchor the reference.
    ref = np.isfinite(values) & (values > 0)
    rel, med = dsc.normalise_to_reference(
        values, ref, min_voxels=min_voxels, what=source.upper(), file=path
    )
    save_like(np.nan_to_num(rel).astype(np.float32), img, out_dir / f"r{source}.nii.gz")
    return {
        "reference": f"median {source.upper()} over the DSC head mask ({source.upper()} > 0)",
        "reference_median": med,
        "reference_voxels": int(ref.sum()),
        "note": "the preprocessing normalisation step divides this map by its median in "
        f"contralateral normal-appearing white matter, like a provided r{source.upper()}",
    }


def _record(out_dir: Path, name: str, info: dict) -> None:
    """Add `info` to a map's JSON sidecar (created when absent)."""
    side = out_dir / f"{name}.json"
    meta = read_json(side) if side.exists() else {}
    write_json(meta | info, side)


def compute_session_maps(
    manifest_in: str | Path,
    manifest_out: str | Path,
    *,
    optional_maps: tuple[str, ...] = ("adc", "rcbv"),
    prefer: str = "provided",
    motion_correction: bool = True,
    seed: int = 0,
) -> dict:
    """Compute the session's maps from its raw acquisitions; write `maps/manifest.json`.

    A provided map wins over a computed one when `prefer` is "provided" (that kind's computation
    is skipped when every map it would give is provided); `map_sources` records the choice."""
    if prefer not in ("provided", "computed"):
        raise ValueError(f"prefer must be 'provided' or 'computed', got {prefer!r}")
    upstream = read_manifest(manifest_in, stage=STAGE)
    anat = Path(manifest_in).parent
    out_dir = Path(manifest_out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(anat, out_dir))
    sequences = {s: str(rel / p.name) for s, p in sequence_paths(manifest_in, upstream).items()}
    missing = dict(upstream.get("missing", {}))
    acquisitions = upstream.get("acquisitions", {})
    sources: dict[str, str] = {s: "provided" for s in sequences if s in optional_maps}
    computed: dict[str, dict] = {}

    def wanted(kind_maps: tuple[str, ...]) -> list[str]:
        used = [m for m in kind_maps if m in optional_maps]
        if prefer == "provided":
            used = [m for m in used if m not in sequences]
        return used

    if "dsc" in acquisitions and (use := wanted(DSC_MAPS)):
        acq = acquisitions["dsc"]
        res = dsc_session(
            [anat / f for f in acq["files"]],
            anat / acq["sidecar"],
            out_dir,
            motion=dsc.MotionSettings(enabled=motion_correction),
            seed=seed,
        )
        for source in ("cbv", "cbf"):
            info = brain_relative(out_dir, source)
            meta = read_json(out_dir / f"{source}.json")
            _record(out_dir, f"r{source}", meta | {"map": f"r{source}", "units": "ratio", **info})
        computed["dsc"] = {"maps": sorted({*res} - {"meta"} | {"rcbv", "rcbf"}), "used": use}
    for kind, kind_maps in (("dwi", DWI_MAPS), ("dti", DTI_MAPS)):
        if kind not in acquisitions or not (use := wanted(kind_maps)):
            continue
        if kind == "dti" and "dwi" in computed:
            use = [m for m in use if m not in computed["dwi"]["used"]]
            if not use:
                continue
        acq = acquisitions[kind]
        parts = ["adc"] * ("adc" in use) + ["ivim"] * any(m.startswith("ivim") for m in use)
        parts += ["dti"] * any(m in ("fa", "md") for m in use)
        if not acq.get("bvec") and "dti" in parts:
            parts.remove("dti")
        res = dwi_session(
            anat / acq["files"][0],
            anat / acq["bval"],
            anat / acq["bvec"] if acq.get("bvec") else None,
            out_dir,
            maps=tuple(parts),
        )
        made = sorted(set(res) - {"meta"})
        computed[kind] = {"maps": made, "used": [m for m in use if m in made]}
    if "dce" in acquisitions and (use := wanted(DCE_MAPS)):
        acq = acquisitions["dce"]
        res = dce_session(anat / acq["files"][0], anat / acq["sidecar"], out_dir)
        computed["dce"] = {"maps": sorted(set(res) - {"meta"}), "used": use}
    for kind, info in computed.items():
        for name in info["used"]:
            if not (out_dir / f"{name}.nii.gz").exists():
                raise SubjectError(f"{name} was not written", stage=STAGE, file=out_dir)
            provided = name in sequences
            sequences[name] = f"{name}.nii.gz"
            missing.pop(name, None)
            sources[name] = f"computed from {kind}" + (" (a provided map was replaced)" * provided)
            _record(out_dir, name, {"source": sources[name]})
    for kind in acquisitions:
        for name in KIND_MAPS.get(kind, ()):
            if name in optional_maps and sources.get(name) == "provided":
                sources[name] = f"provided (raw {kind} present, not computed: prefer=provided)"
    manifest = {k: upstream.get(k, "") for k in ("cohort", "subject", "session")}
    manifest |= {
        "sequences": dict(sorted(sequences.items())),
        "missing": missing,
        "map_sources": dict(sorted(sources.items())),
        "computed": computed,
    }
    for key in ("layout", "skull_stripped", "labels_file", "study_day"):
        if key in upstream:
            manifest[key] = upstream[key]
    write_json(manifest, manifest_out)
    if computed:
        log.info("maps computed: %s", {k: v["used"] for k, v in computed.items()})
    return manifest
