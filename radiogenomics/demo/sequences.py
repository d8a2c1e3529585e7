"""Demo cohort generator (foundation stage): MR signal per sequence, motion, bias, noise, site.

Conventional sequences are in arbitrary scanner units (tissue contrast relative to normal white
matter, then a site/subject gain, gamma and offset so harmonisation matters). ADC is in
physical units (x1e-6 mm^2/s) and rCBV relative to normal white matter (WM ~ 1, GM ~ 2).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from radiogenomics.demo.anatomy import Anatomy, rotation_matrix, smooth_field
from radiogenomics.demo.tumour import (
    EDEMA,
    HYPERVASCULAR,
    HYPOVASCULAR,
    NONVIABLE,
    Tumour,
    smooth_noise,
)

SEQUENCES = ("t1", "t1ce", "t2", "flair", "adc", "rcbv")
CONVENTIONAL = ("t1", "t1ce", "t2", "flair")
REFERENCE = "t1ce"

# Normal tissue signal per sequence (conventional: relative to WM; adc: 1e-6 mm^2/s; rcbv: WM = 1).
NORMAL = {
    #         wm     gm     csf    bone   marrow galea  fat    skin
    "t1":    (1.00, 0.72, 0.28, 0.04, 0.95, 0.55, 1.25, 0.75),
    "t1ce":  (1.00, 0.74, 0.30, 0.04, 0.95, 0.62, 1.25, 0.80),
    "t2":    (0.55, 0.80, 2.00, 0.04, 0.75, 0.40, 1.05, 0.70),
    "flair": (0.75, 1.00, 0.12, 0.04, 0.85, 0.50, 1.05, 0.75),
    "adc":   (750., 850., 3000., 0.0, 400., 1400., 200., 1100.),
    "rcbv":  (1.00, 2.00, 0.30, 0.05, 0.50, 1.00, 0.30, 1.50),
}  # fmt: skip
TISSUE_ORDER = ("wm", "gm", "csf", "bone", "marrow", "galea", "fat", "skin")

# Tumour compartments: (t1, t1ce without contrast uptake, enhancement weight, t2, flair).
TUMOUR = {
    "edema": (0.78, 0.80, 0.00, 1.45, 1.55),
    HYPERVASCULAR: (0.62, 0.64, 1.00, 1.25, 1.35),
    HYPOVASCULAR: (0.66, 0.68, 0.60, 1.30, 1.40),
    NONVIABLE: (0.55, 0.57, 0.25, 1.60, 1.25),
    "necrosis": (0.42, 0.44, 0.00, 1.90, 0.80),
}
# Habitat-specific map distributions: ADC mean and sd (1e-6 mm^2/s), rCBV median (lognormal).
ADC = {
    "edema": (1350, 120),
    HYPERVASCULAR: (680, 80),
    HYPOVASCULAR: (800, 80),
    NONVIABLE: (1550, 180),
    "necrosis": (2300, 220),
}
# Hypovascular at normal-WM level: the population boundary for low-ADC voxels lies below the
# geometric midpoint of the two viable habitats (~1.35 x WM on the small demo).
RCBV = {"edema": 0.9, HYPERVASCULAR: 4.0, HYPOVASCULAR: 1.0, NONVIABLE: 0.5, "necrosis": 0.35}

# Site effects: gain per conventional sequence, gamma (contrast), offset, noise (fraction of WM),
# bias-field strength, and map calibration factors (ADC, rCBV).
SITES = {
    "demo_a": {
        "gain": {"t1": 600.0, "t1ce": 650.0, "t2": 900.0, "flair": 700.0},
        "gamma": 1.0,
        "offset": 0.0,
        "noise": 0.025,
        "bias": 0.12,
        "adc": 1.0,
        "rcbv": 1.0,
        "adc_noise": 50.0,
        "rcbv_noise": 0.12,
    },
    "demo_b": {
        "gain": {"t1": 1800.0, "t1ce": 1900.0, "t2": 2600.0, "flair": 1500.0},
        "gamma": 0.85,
        "offset": 0.08,
        "noise": 0.04,
        "bias": 0.2,
        "adc": 1.06,
        "rcbv": 1.2,
        "adc_noise": 80.0,
        "rcbv_noise": 0.2,
    },
}


def normal_signal(seq: str, anat: Anatomy) -> np.ndarray:
    """Partial-volume mix of the normal tissue values of one sequence."""
    vals = NORMAL[seq]
    out = np.zeros(anat.shape, np.float32)
    for name, v in zip(TISSUE_ORDER, vals, strict=True):
        out += anat.fractions[name] * np.float32(v)
    return out


def _compartments(tum: Tumour) -> dict:
    """Boolean masks of the tumour compartments used by the signal tables."""
    viable_nv = (tum.habitat == NONVIABLE) & ~tum.necrosis
    return {
        "edema": tum.labels == EDEMA,
        HYPERVASCULAR: tum.habitat == HYPERVASCULAR,
        HYPOVASCULAR: tum.habitat == HYPOVASCULAR,
        NONVIABLE: viable_nv,
        "necrosis": tum.necrosis,
    }


def rcbv_log_offset(key, row: dict, z: np.ndarray) -> np.ndarray:
    """log(rCBV / habitat median) of one compartment's voxels from their unit noise `z`.

    Only the viable habitats carry the subject's shift (IDH, small noise) and spread, modest
    enough that voxels stay on their habitat's side; the CDKN2A/B tail widens only the upper half
    of the hypervascular habitat (skewed histogram, same habitat membership).
    """
    if key not in (HYPERVASCULAR, HYPOVASCULAR):
        return 0.25 * z  # oedema, nonviable tissue and necrosis: narrow, no subject effect
    sigma = float(row["rcbv_sigma"])
    if key == HYPERVASCULAR:
        scale, upper = row["rcbv_scale_hypervascular"], float(row["rcbv_upper_sigma"])
    else:
        scale, upper = row["rcbv_scale_hypovascular"], sigma
    return np.log(float(scale)) + np.where(z > 0, upper, sigma) * z


def tumour_maps(row: dict, tum: Tumour, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-voxel ADC and rCBV of tumour compartments (habitat distributions + correlated noise)."""
    comp = _compartments(tum)
    het = float(row["heterogeneity"])
    z_adc = smooth_noise(tum.labels.shape, rng)
    z_cbv = smooth_noise(tum.labels.shape, rng)
    adc = np.zeros(tum.labels.shape, np.float32)
    cbv = np.zeros(tum.labels.shape, np.float32)
    for key, mask in comp.items():
        mean, sd = ADC[key]
        adc[mask] = (mean + sd * het * z_adc[mask]) * float(row["adc_scale"])
        cbv[mask] = RCBV[key] * np.exp(rcbv_log_offset(key, row, het * z_cbv[mask]))
        if key == "edema":  # EGFRvIII's peritumoural signature (1.0 without it)
            adc[mask] *= float(row.get("edema_adc_scale", 1.0))
            cbv[mask] *= float(row.get("edema_rcbv_scale", 1.0))
    return {"adc": np.clip(adc, 50, None), "rcbv": cbv}


# T1 before and after contrast: the same relaxation (so the same tumour texture) and the same
# acquisition in one session (so the same receive-coil bias field); they differ only by uptake,
# and their subtraction shows enhancement rather than texture or bias noise.
TEXTURE_FAMILY = {"t1": "t1", "t1ce": "t1", "t2": "t2", "flair": "flair"}


def tumour_texture(row: dict, tum: Tumour, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative tumour texture (mean 1) of one texture family."""
    het = float(row["heterogeneity"])
    return (1.0 + 0.07 * het * smooth_noise(tum.labels.shape, rng, 1.0)).astype(np.float32)


def tumour_signal(seq: str, row: dict, tum: Tumour, tex: np.ndarray) -> dict:
    """Signal of each tumour compartment for a conventional sequence: {mask: values}.

    `tex` is the texture of the sequence's family (`TEXTURE_FAMILY`, from `tumour_texture`)."""
    col = {"t1": 0, "t1ce": 1, "t2": 3, "flair": 4}[seq]
    out = {}
    for key, mask in _compartments(tum).items():
        v = np.full(int(mask.sum()), TUMOUR[key][col], np.float32)
        if seq == "t1ce":
            v = v + TUMOUR[key][2] * float(row["enhancement_gain"])
        if seq == "flair" and key == "edema":  # EGFRvIII: lower peritumoural FLAIR
            v = v * float(row.get("edema_flair_scale", 1.0))
        out[key] = (mask, v * tex[mask])
    if row["mismatch"]:
        # T2-FLAIR mismatch: T2 homogeneously bright, FLAIR suppressed centrally, bright thin rim.
        core = (tum.labels == 1) | (tum.labels == 3)
        if seq == "t2":
            out["mismatch"] = (
                core,
                np.full(int(core.sum()), 1.75, np.float32) * (1 + 0.02 * (tex[core] - 1)),
            )
        elif seq == "flair":
            rim = tum.rho[core] >= 0.8
            out["mismatch"] = (core, np.where(rim, 1.5, 0.62).astype(np.float32) * tex[core])
    return out


def motion(
    rng: np.random.Generator, centre: np.ndarray, max_deg: float = 3.0, max_mm: float = 3.0
) -> dict:
    """A small random rigid head movement about `centre` (world mm): parameters, matrix, inverse."""
    deg = rng.uniform(-max_deg, max_deg, 3)
    shift = rng.uniform(-max_mm, max_mm, 3)
    m = np.eye(4)
    r = rotation_matrix(deg)
    m[:3, :3] = r
    m[:3, 3] = centre - r @ centre + shift
    return {
        "rotation_deg_xyz": deg.tolist(),
        "translation_mm": shift.tolist(),
        "centre_mm": centre.tolist(),
        "matrix": m.tolist(),
        "inverse": np.linalg.inv(m).tolist(),
    }


def apply_motion(
    data: np.ndarray, affine: np.ndarray, matrix: np.ndarray, order: int = 1, mode: str = "constant"
) -> np.ndarray:
    """Move image content by world matrix M on the same grid: out(y) = data(M^-1 y).

    `mode="nearest"` for a slab that cuts through the head: tissue moving in through its edge
    has signal (a constant 0 makes edge voxels lose all signal, a fake bolus). `order` > 1 is a
    B-spline of that degree (prefiltered, so it interpolates)."""
    vox = np.linalg.inv(affine) @ np.linalg.inv(matrix) @ affine
    return ndimage.affine_transform(
        data,
        vox[:3, :3],
        offset=vox[:3, 3],
        order=order,
        mode=mode,
        cval=0.0,
        prefilter=order > 1,
    )


def bias_field(shape, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative coil-sensitivity field around 1."""
    return np.exp(strength * smooth_field(shape, rng, max(shape) / 2.5)).astype(np.float32)


def render_sequence(
    seq: str,
    row: dict,
    cohort: str,
    anat: Anatomy,
    tum: Tumour,
    maps: dict,
    xfm: np.ndarray,
    rng: np.random.Generator,
    texture: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Full acquisition of one sequence: tissue+tumour signal, PSF, motion, bias, site, noise.

    `texture` is the tumour texture of a conventional sequence's family (`tumour_texture`);
    `bias`, the family's bias field, is drawn from `rng` when absent."""
    site = SITES[cohort]
    res = float(abs(anat.affine[0, 0]))
    sig = normal_signal(seq, anat)
    if seq in ("adc", "rcbv"):
        tmask = tum.labels > 0
        sig[tmask] = maps[seq][tmask]
    else:
        for mask, values in tumour_signal(seq, row, tum, texture).values():
            sig[mask] = values
        # Site contrast (gamma) and offset act on tissue; they move with the head below.
        headfrac = np.clip(sum(anat.fractions.values()), 0, 1)
        sig = np.clip(sig, 0, None) ** site["gamma"] + site["offset"] * headfrac
    sig = ndimage.gaussian_filter(sig, 0.45 * 2.0 / res)  # point-spread function
    if seq != REFERENCE:
        sig = apply_motion(sig, anat.affine, xfm)
    if seq == "adc":
        inside = sig > 1.0  # scanners zero the ADC where the b0 signal is absent (air, bone)
        sig = sig * site["adc"] * float(np.exp(rng.normal(0, 0.03)))
        sig = sig + site["adc_noise"] * rng.standard_normal(sig.shape).astype(np.float32)
        return np.where(inside, np.clip(sig, 0, 4000), 0).astype(np.float32)
    if seq == "rcbv":
        inside = sig > 1e-3
        sig = sig * site["rcbv"] * float(np.exp(rng.normal(0, 0.08)))
        sig = sig * (1 + site["rcbv_noise"] * rng.standard_normal(sig.shape).astype(np.float32))
        return np.where(inside, np.clip(sig, 0, 25), 0).astype(np.float32)
    sig = sig * (bias_field(anat.shape, rng, site["bias"]) if bias is None else bias)
    gain = site["gain"][seq] * float(np.exp(rng.normal(0, 0.08)))
    sigma = site["noise"]
    n1 = rng.standard_normal(sig.shape).astype(np.float32)
    n2 = rng.standard_normal(sig.shape).astype(np.float32)
    # Magnitude of complex data with Gaussian noise in each channel: Rician, Rayleigh in air.
    mag = np.sqrt((sig + sigma * n1) ** 2 + (sigma * n2) ** 2)
    return (gain * mag).astype(np.float32)
