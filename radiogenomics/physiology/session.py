"""Physiologic maps (map computation before intake): one entry point per raw acquisition kind.

Each reads a 4-D NIfTI (+ BIDS-style sidecar: RepetitionTime and EchoTime in seconds, FlipAngle in
degrees) and writes `{out_dir}/{map}.nii.gz` with a `{map}.json` beside it (method, parameters,
units, AIF source, reference region and value, warnings), atomically. Functions return a summary
dict {map name: file name, "meta": ...}. Masks are 3-D NIfTI on the series' grid.

    dsc_session(paths, sidecars, out_dir, brain_mask=..., wm_mask=..., exclude_mask=...)
        -> cbv, cbv_uncorrected, cbf, mtt, k2, ph, psr (+ rcbv, rcbf with a WM mask)
    dwi_session(dwi, bval, bvec, out_dir, mask=...) -> adc (+ ivim_d, ivim_f, ivim_dstar; fa, md)
    dce_session(dce, sidecar, out_dir, mask=..., aif=..., t10=...) -> ktrans, ve, vp, kep
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.io import load_nifti, load_nifti_4d, save_like, write_json
from radiogenomics.physiology import dce, diffusion, dsc

log = logging.getLogger(__name__)

DSC_UNITS = {
    "cbv": "mL/100 mL (x kappa = kH/rho)",
    "cbv_uncorrected": "mL/100 mL, no leakage correction",
    "cbf": "mL/100 mL/min",
    "mtt": "s",
    "k2": "1/s (BSW; > 0 T1-dominant leakage)",
    "ph": "1/s (peak dR2*)",
    "psr": "%",
    "rcbv": "ratio to the reference region's median",
    "rcbf": "ratio to the reference region's median",
}
DIFFUSIVITY_UNIT = "1e-6 mm^2/s"
MM2_TO_STORED = 1e6  # diffusivities are stored in 1e-6 mm^2/s, the project's ADC unit


# ---------------------------------------------------------------------------------------- inputs
def read_sidecar(sidecar: dict | str | Path, *, stage: str) -> tuple[dict, str]:
    """A sidecar as a dict (given, or read from a JSON file) and a name for error messages."""
    if isinstance(sidecar, dict):
        return dict(sidecar), "sidecar"
    path = Path(sidecar)
    try:
        return json.loads(path.read_text()), str(path)
    except (OSError, ValueError) as exc:
        raise SubjectError(
            f"cannot read sidecar: {type(exc).__name__}: {exc}", stage=stage, file=path
        ) from exc


def sidecar_seconds(
    side: dict, key: str, lo: float, hi: float, *, stage: str, file: str
) -> float | list[float]:
    """A time from the sidecar in seconds (BIDS); out-of-range values (ms?) raise SubjectError."""
    if key not in side:
        raise SubjectError(f"sidecar lacks {key}", stage=stage, file=file)
    val = side[key]
    vals = [float(v) for v in (val if isinstance(val, list | tuple) else [val])]
    for v in vals:
        if not lo <= v <= hi:
            raise SubjectError(
                f"{key}={v} outside {lo}-{hi} s (BIDS sidecars give seconds, not ms)",
                stage=stage,
                file=file,
            )
    return vals if isinstance(val, list | tuple) else vals[0]


def load_mask(
    path: str | Path | None, like: nib.Nifti1Image, *, stage: str, what: str
) -> np.ndarray | None:
    """A 3-D mask on the grid of `like` (shape and affine must match), or None."""
    if path is None:
        return None
    img = load_nifti(path, stage=stage, what=what)
    if img.shape[:3] != like.shape[:3] or not np.allclose(img.affine, like.affine, atol=1e-3):
        raise SubjectError(
            f"{what} is not on the series' grid (shape {img.shape[:3]} vs {like.shape[:3]})",
            stage=stage,
            file=path,
        )
    return np.asarray(img.dataobj) > 0


def signal_mask(image: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Default head mask of a baseline image: above `fraction` x its 99th percentile, the largest
    connected component, holes filled (EPI background sits at a few % of tissue signal)."""
    from scipy import ndimage

    img = np.nan_to_num(np.asarray(image, np.float64))
    pos = img[img > 0]
    if pos.size == 0:
        return np.zeros(img.shape, bool)
    mask = img > fraction * np.percentile(pos, 99)
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, lab, index=np.arange(1, n + 1))
        mask = lab == int(np.argmax(sizes)) + 1
    return ndimage.binary_fill_holes(mask)


def grid_reference(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """A 3-D image with the 4-D series' affine and header, for writing maps on its grid."""
    ref = nib.Nifti1Image(np.zeros(img.shape[:3], np.float32), img.affine, img.header)
    ref.header.set_xyzt_units(*img.header.get_xyzt_units())
    return ref


def write_maps(
    maps: dict[str, np.ndarray],
    ref: nib.Nifti1Image,
    out_dir: str | Path,
    meta: dict,
    units: dict[str, str],
) -> dict[str, str]:
    """Write each map (float32) and its JSON sidecar; returns {map: file name}."""
    out = Path(out_dir)
    written = {}
    for name in sorted(maps):
        save_like(np.asarray(maps[name], np.float32), ref, out / f"{name}.nii.gz")
        write_json({"map": name, "units": units.get(name, ""), **meta}, out / f"{name}.json")
        written[name] = f"{name}.nii.gz"
    return written


# ------------------------------------------------------------------------------------------- DSC
def dsc_session(
    series: str | Path | Sequence[str | Path],
    sidecars: dict | str | Path | Sequence[dict | str | Path],
    out_dir: str | Path,
    *,
    brain_mask: str | Path | None = None,
    wm_mask: str | Path | None = None,
    exclude_mask: str | Path | None = None,
    settings: dsc.DscSettings | None = None,
    motion: dsc.MotionSettings | None = None,
    seed: int = 0,
) -> dict:
    """DSC maps of one session: one 4-D file per echo (or one), sidecar(s) with TR and TE(s).

    A single sidecar may list two EchoTime values for two files. `wm_mask`: normal-appearing
    (contralateral, tumour-excluded) white matter for rCBV/rCBF; `exclude_mask`: lesion voxels left
    out of the leakage reference; `brain_mask`: default `signal_mask` of the baseline mean."""
    stage = dsc.STAGE
    settings = settings or dsc.DscSettings()
    motion = motion or dsc.MotionSettings()
    paths = [series] if isinstance(series, str | Path) else list(series)
    if len(paths) not in (1, 2):
        raise SubjectError(f"DSC takes 1 or 2 echo files, got {len(paths)}", stage=stage)
    cars = [sidecars] if isinstance(sidecars, dict | str | Path) else list(sidecars)
    side, side_name = read_sidecar(cars[0], stage=stage)
    tr = sidecar_seconds(side, "RepetitionTime", 0.1, 10.0, stage=stage, file=side_name)
    tes = sidecar_seconds(side, "EchoTime", 1e-4, 0.2, stage=stage, file=side_name)
    tes = list(tes) if isinstance(tes, list) else [tes]
    for extra in cars[1:]:
        s2, n2 = read_sidecar(extra, stage=stage)
        tes.append(sidecar_seconds(s2, "EchoTime", 1e-4, 0.2, stage=stage, file=n2))
    if len(tes) != len(paths):
        raise SubjectError(
            f"{len(paths)} echo file(s) but {len(tes)} echo time(s)", stage=stage, file=side_name
        )
    imgs = [load_nifti_4d(p, stage=stage, what="DSC series") for p in paths]
    for p, img in zip(paths[1:], imgs[1:], strict=True):
        if img.shape != imgs[0].shape or not np.allclose(img.affine, imgs[0].affine, atol=1e-3):
            raise SubjectError("echo files differ in shape or grid", stage=stage, file=p)
    order = np.argsort(tes)
    tes = [float(tes[i]) for i in order]
    imgs = [imgs[i] for i in order]
    echoes = [np.asarray(img.dataobj, np.float32) for img in imgs]
    ref_img = imgs[0]
    mask = load_mask(brain_mask, ref_img, stage=stage, what="brain mask")
    if mask is None:
        k = settings.skip_initial
        mask = signal_mask(echoes[-1][..., k : k + settings.min_baseline].mean(axis=-1))
    # Timing first (on the raw brain mean): the baseline is motion correction's reference.
    timing = dsc.detect_timing(echoes[-1][mask].mean(axis=0), settings, file=paths[-1])
    motion_meta: dict = {"enabled": motion.enabled}
    if motion.enabled:
        echoes, params = dsc.motion_correct(echoes, ref_img.affine, timing.baseline, motion, seed)
        motion_meta.update(
            method="ANTs rigid (Mattes MI) of each volume to the baseline mean, first echo",
            max_rotation_deg=max(p["rotation_deg"] for p in params),
            max_translation_mm=max(p["translation_mm"] for p in params),
            seed=seed,
        )
    result = dsc.compute_dsc_maps(
        echoes,
        tes,
        tr,
        mask,
        wm_mask=load_mask(wm_mask, ref_img, stage=stage, what="white-matter mask"),
        exclude_from_reference=load_mask(exclude_mask, ref_img, stage=stage, what="lesion mask"),
        settings=settings,
        file=paths[-1],
    )
    meta = {
        **result.meta,
        "motion": motion_meta,
        "source": [str(p) for p in paths],
        "brain_mask": str(brain_mask) if brain_mask else "signal_mask of the baseline mean",
    }
    written = write_maps(result.maps, grid_reference(ref_img), out_dir, meta, DSC_UNITS)
    return {**written, "meta": meta}


# ------------------------------------------------------------------------------------------- DWI
def dwi_session(
    dwi: str | Path,
    bval: str | Path,
    bvec: str | Path | None,
    out_dir: str | Path,
    *,
    mask: str | Path | None = None,
    b_max: float = 1000.0,
    maps: Sequence[str] = ("adc", "ivim", "dti"),
    ivim_b_split: float = 200.0,
) -> dict:
    """ADC (b <= b_max, trace) and, where the scheme allows, IVIM (>= 4 b-values) and DTI (>= 6
    directions at one b > 0) maps of a 4-D DWI. Diffusivities are written in 1e-6 mm^2/s."""
    stage = diffusion.STAGE
    img = load_nifti_4d(dwi, stage=stage, what="DWI series")
    bvals, bvecs = diffusion.read_gradients(bval, bvec)
    n = img.shape[3]
    diffusion.check_gradients(bvals, bvecs, n, file=bval, bvec_file=bvec)
    data = np.asarray(img.dataobj, np.float32)
    m = load_mask(mask, img, stage=stage, what="brain mask")
    if m is None:
        m = signal_mask(data[..., bvals <= bvals.min() + 50].mean(axis=-1))
    sig = data[m]
    out: dict[str, np.ndarray] = {}
    warnings: list[str] = []
    meta: dict = {"source": str(dwi), "b_values": sorted({round(float(b)) for b in bvals})}

    def volume(v: np.ndarray) -> np.ndarray:
        vol = np.zeros(m.shape, np.float32)
        vol[m] = np.nan_to_num(v)
        return vol

    if "adc" in maps:
        adc = diffusion.adc_loglinear(sig, bvals, b_max, file=bval)
        out["adc"] = volume(np.clip(adc, 0, None) * MM2_TO_STORED)
        meta["adc"] = {"method": "log-linear least squares, trace (geometric mean per shell)",
                       "b_max": b_max}  # fmt: skip
    labels = diffusion.shells(bvals)
    if "ivim" in maps:
        if np.unique(labels).size >= 4:
            fit = diffusion.ivim_segmented(sig, bvals, ivim_b_split, file=bval)
            out["ivim_d"] = volume(fit["D"] * MM2_TO_STORED)
            out["ivim_f"] = volume(fit["f"])
            out["ivim_dstar"] = volume(fit["Dstar"] * MM2_TO_STORED)
            meta["ivim"] = {"method": "segmented (D from b >= split, f from intercept, D* grid)",
                            "b_split": ivim_b_split}  # fmt: skip
        else:
            warnings.append("IVIM skipped: fewer than 4 b-values")
    if "dti" in maps:
        dw = bvals > 50
        if bvecs is not None and np.linalg.matrix_rank(bvecs[dw]) == 3 and dw.sum() >= 6:
            fa, md = diffusion.dti_fa_md(data, bvals, bvecs, m)
            out["fa"] = (fa * m).astype(np.float32)
            out["md"] = (md * m * MM2_TO_STORED).astype(np.float32)
            meta["dti"] = {"method": "dipy TensorModel (WLS)"}
        else:
            warnings.append("DTI skipped: fewer than 6 non-collinear diffusion directions")
    meta["warnings"] = warnings
    units = {"adc": DIFFUSIVITY_UNIT, "ivim_d": DIFFUSIVITY_UNIT, "ivim_dstar": DIFFUSIVITY_UNIT,
             "md": DIFFUSIVITY_UNIT, "ivim_f": "fraction", "fa": "fraction"}  # fmt: skip
    written = write_maps(out, grid_reference(img), out_dir, meta, units)
    return {**written, "meta": meta}


def dti_session(dwi, bval, bvec, out_dir, *, mask=None) -> dict:
    """FA and MD only (dipy TensorModel) of a DTI series."""
    return dwi_session(dwi, bval, bvec, out_dir, mask=mask, maps=("dti",))


# ------------------------------------------------------------------------------------------- DCE
def dce_session(
    series: str | Path,
    sidecar: dict | str | Path,
    out_dir: str | Path,
    *,
    mask: str | Path | None = None,
    aif: np.ndarray | None = None,
    t10: str | Path | float = dce.T10_ASSUMED_S,
    r1: float = dce.R1_GD_3T,
    hematocrit: float = 0.42,
    extended: bool = True,
    baseline_volumes: int | None = None,
) -> dict:
    """Ktrans, ve, vp, kep maps of a DCE series by (extended) Tofts, linear least squares.

    Sidecar: RepetitionTime (s, of the SPGR excitation; or RepetitionTimeExcitation), FlipAngle
    (deg) and TemporalResolution (s, volume spacing). `aif`: arterial plasma concentration (mM) on
    the volume times; None uses the Parker population blood AIF / (1 - hematocrit), its onset at
    the detected enhancement onset. `t10`: a T1 map (s, NIfTI on the grid) or an assumed value."""
    stage = dce.STAGE
    side, side_name = read_sidecar(sidecar, stage=stage)
    key = "RepetitionTimeExcitation" if "RepetitionTimeExcitation" in side else "RepetitionTime"
    tr = sidecar_seconds(side, key, 1e-4, 0.1, stage=stage, file=side_name)
    dt = sidecar_seconds(side, "TemporalResolution", 0.1, 60.0, stage=stage, file=side_name)
    if "FlipAngle" not in side:
        raise SubjectError("sidecar lacks FlipAngle", stage=stage, file=side_name)
    flip = float(side["FlipAngle"])
    img = load_nifti_4d(series, stage=stage, what="DCE series")
    data = np.asarray(img.dataobj, np.float32)
    m = load_mask(mask, img, stage=stage, what="brain mask")
    if m is None:
        m = signal_mask(data[..., 0])
    sig = data[m].astype(np.float64)
    n = sig.shape[1]
    if n < 10:
        raise SubjectError(f"DCE series has {n} volumes, at least 10 needed", stage=stage,
                           file=series)  # fmt: skip
    warnings: list[str] = []
    if baseline_volumes is None:
        baseline_volumes = dce.enhancement_onset(sig.mean(axis=0), file=str(series))
    base = slice(0, baseline_volumes)
    if isinstance(t10, str | Path):
        t10_img = load_nifti(t10, stage=stage, what="T1 map")
        t10_val: float | np.ndarray = np.clip(np.asarray(t10_img.dataobj, np.float64)[m], 0.1, 6)
        t10_meta = {"source": str(t10)}
    else:
        t10_val = float(t10)
        t10_meta = {"assumed_s": t10_val}
        warnings.append(f"no T1 map: T10 = {t10_val} s assumed for every voxel")
    conc = dce.spgr_concentration(sig, base, tr, flip, t10_val, r1)
    t = np.arange(n) * dt
    if aif is None:
        cp = dsc.population_aif(n, dt, baseline_volumes) / (1 - hematocrit)
        aif_meta = {"source": "population (Parker 2006) / (1 - Hct)", "hematocrit": hematocrit}
        warnings.append("population AIF: Ktrans/vp scale depends on it")
    else:
        cp = np.asarray(aif, np.float64)
        if cp.size != n:
            raise SubjectError(f"AIF has {cp.size} points for {n} volumes", stage=stage,
                               file=series)  # fmt: skip
        aif_meta = {"source": "given"}
    fit = dce.tofts_lls(conc, cp, t, extended)

    def volume(v: np.ndarray) -> np.ndarray:
        vol = np.zeros(m.shape, np.float32)
        vol[m] = np.nan_to_num(v)
        return vol

    out = {"ktrans": volume(fit["Ktrans"]), "kep": volume(fit["kep"]), "ve": volume(fit["ve"])}
    if extended:
        out["vp"] = volume(fit["vp"])
    meta = {
        "method": ("extended " if extended else "") + "Tofts, linear least squares (Murase 2004)",
        "tr_s": tr, "flip_deg": flip, "temporal_resolution_s": dt, "r1_per_mM_s": r1,
        "t10": t10_meta, "aif": aif_meta, "baseline_volumes": baseline_volumes,
        "source": str(series), "warnings": warnings,
    }  # fmt: skip
    units = {"ktrans": "1/min", "kep": "1/min", "ve": "fraction", "vp": "fraction"}
    written = write_maps(out, grid_reference(img), out_dir, meta, units)
    return {**written, "meta": meta}
