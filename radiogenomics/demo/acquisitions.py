"""Demo cohort generator (foundation stage): raw acquisitions from planted maps.

Forward models that the map computation (`radiogenomics.physiology`) inverts:
- DSC: gamma-variate first pass + recirculation AIF (dR2*, 1/s); tissue dR2*(t) = ratio x CBV x
  (AIF conv R)(t) / MTT with an exponential residue R(t) = exp(-t/MTT), so that the integral of the
  tissue curve is ratio x CBV x integral(AIF). CBV (fraction) = planted rCBV x `wm_cbv`/100 (the
  demo's rCBV is relative to normal WM = 1, sequences.py). T1 leakage with a planted K2 (1/s):
  dR2*_obs = dR2*_true - K2 cumsum(dR2*_WM) dt (positive K2 raises the signal: enhancing tumour).
  Signal S = S0 exp(-TE dR2*_obs), a slow rigid head drift (smoothed random walk, volume 0 at
  rest, each volume moved by cubic B-spline resampling), then Rician noise.
- DWI: isotropic mono-exponential S = S0 exp(-b ADC) at each b (ADC planted in 1e-6 mm^2/s, the
  demo's unit), one volume per direction, Rician noise.
`ratio` (`tissue_relaxivity_ratio`) is the tissue/blood dR2* efficiency: it scales absolute CBV
(computed CBV = 100 ratio CBV with kappa = 1, as in real data) but cancels in rCBV.
All randomness comes from the `seed` argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiogenomics.demo.anatomy import rotation_matrix
from radiogenomics.demo.sequences import apply_motion


@dataclass(frozen=True)
class DscProtocol:
    """Acquisition and physiology constants of the simulated DSC series."""

    n_timepoints: int = 60
    tr: float = 1.5  # s
    te: float = 0.030  # s
    arrival_s: float = 15.0
    aif_peak: float = 25.0  # peak arterial dR2* (1/s) at 1.5 T
    # Susceptibility dR2* grows about linearly with the field (Boxerman 1995), so a 3 T site sees
    # twice the 1.5 T relaxation for the same dose: why 3 T protocols use shorter echoes.
    b0_t: float = 1.5
    aif_alpha: float = 3.0
    aif_beta: float = 1.5  # s
    recirculation: float = 0.15  # second-pass area relative to the first
    recirculation_delay_s: float = 8.0
    steady_state: float = 0.04  # late plateau relative to the first-pass peak
    wm_cbv: float = 2.5  # mL/100 mL of normal WM
    mtt_s: float = 4.0  # default mean transit time
    tissue_relaxivity_ratio: float = 4.0
    noise: float = 0.01  # Gaussian sd per channel, fraction of the median brain S0
    max_rotation_deg: float = 0.5
    max_translation_mm: float = 0.5


@dataclass(frozen=True)
class DwiProtocol:
    """Acquisition of the simulated DWI series."""

    bvals: tuple[float, ...] = (0.0, 500.0, 1000.0)
    directions: int = 3  # per b > 0 (x, y, z)
    noise: float = 0.01  # Gaussian sd per channel, fraction of the median brain S0


def gamma_variate(t: np.ndarray, t0: float, alpha: float, beta: float) -> np.ndarray:
    """Unit-peak gamma variate starting at t0."""
    x = np.clip(np.asarray(t, np.float64) - t0, 0, None)
    peak = (alpha * beta) ** alpha * np.exp(-alpha)
    return x**alpha * np.exp(-x / beta) / peak


def dsc_aif(protocol: DscProtocol = DscProtocol()) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, arterial dR2* in 1/s): first pass, dispersed recirculation, small plateau."""
    p = protocol
    t = np.arange(p.n_timepoints) * p.tr
    first = gamma_variate(t, p.arrival_s, p.aif_alpha, p.aif_beta)
    beta2 = 2.0 * p.aif_beta
    second = gamma_variate(t, p.arrival_s + p.recirculation_delay_s, p.aif_alpha, beta2)
    # Scale the second pass to `recirculation` x the first pass' area (areas scale with beta).
    second *= p.recirculation * p.aif_beta / beta2
    onset = 1.0 / (1.0 + np.exp(-(t - p.arrival_s - 2 * p.recirculation_delay_s) / 3.0))
    peak = p.aif_peak * p.b0_t / 1.5
    return t, peak * (first + second + p.steady_state * onset)


def tissue_curves(
    aif: np.ndarray, dt: float, cbv_fraction: np.ndarray, mtt_s: np.ndarray
) -> np.ndarray:
    """(N, T) tissue dR2* = CBV/MTT x (AIF conv exp(-t/MTT)); integral = CBV x integral(AIF)."""
    n = aif.size
    t = np.arange(n) * dt
    cbv = np.asarray(cbv_fraction, np.float64).ravel()
    mtt = np.asarray(mtt_s, np.float64).ravel() * np.ones_like(cbv)
    out = np.empty((cbv.size, n))
    for val in np.unique(mtt):  # few distinct MTTs: one convolution each
        sel = mtt == val
        res = np.exp(-t / val)
        conv = np.convolve(aif, res)[:n] * dt
        # The discrete convolution's area is aif.sum() x res.sum() x dt^2: rescale it to the
        # continuous identity integral(C) = CBV x integral(AIF) exactly.
        conv *= aif.sum() / max(conv.sum(), 1e-30)
        out[sel] = cbv[sel, None] * conv[None, :]
    return out


def drift(n: int, max_abs: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) slow head drift: smoothed random walk from 0 at volume 0, peak |value| = max_abs."""
    if max_abs <= 0:
        return np.zeros((n, 3))
    walk = np.cumsum(rng.standard_normal((n, 3)), axis=0)
    kernel = np.hanning(9) / np.hanning(9).sum()
    smooth = np.stack([np.convolve(np.pad(w, 4, mode="edge"), kernel, "valid") for w in walk.T], 1)
    smooth -= smooth[0]
    return smooth * (max_abs / max(float(np.abs(smooth).max()), 1e-12))


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of complex data with Gaussian noise of sd `sigma` in each channel."""
    n1 = rng.standard_normal(signal.shape).astype(np.float32)
    n2 = rng.standard_normal(signal.shape).astype(np.float32)
    return np.sqrt((signal + sigma * n1) ** 2 + (sigma * n2) ** 2).astype(np.float32)


def simulate_dsc(
    s0: np.ndarray,
    rcbv: np.ndarray,
    affine: np.ndarray,
    *,
    k2: np.ndarray | None = None,
    mtt: np.ndarray | None = None,
    artery: np.ndarray | None = None,
    protocol: DscProtocol = DscProtocol(),
    seed: int = 0,
) -> dict:
    """Simulated single-echo DSC series (x, y, z, t) from planted maps.

    `s0`: baseline signal (0 outside the head); `rcbv`: relative to normal WM (= 1); `k2`: leakage
    (1/s, > 0 in leaky enhancing tumour); `mtt`: s (default protocol.mtt_s); `artery`: voxels that
    hold pure arterial blood (the AIF). Returns {"series", "aif", "times", "motion", "truth"}."""
    p = protocol
    rng = np.random.default_rng(seed)
    t, aif = dsc_aif(p)
    shape = np.asarray(s0).shape
    tissue = np.asarray(s0) > 0
    rc = np.where(tissue, np.asarray(rcbv, np.float64), 0.0)
    mt = np.full(shape, p.mtt_s) if mtt is None else np.asarray(mtt, np.float64)
    kk = np.zeros(shape) if k2 is None else np.asarray(k2, np.float64)
    cbv_frac = rc * p.wm_cbv / 100.0 * p.tissue_relaxivity_ratio
    dr2s = np.zeros(shape + (p.n_timepoints,), np.float64)
    dr2s[tissue] = tissue_curves(aif, p.tr, cbv_frac[tissue], mt[tissue])
    if artery is not None:
        dr2s[np.asarray(artery, bool)] = aif
    # Leakage against the normal-WM curve shape (rCBV 1, default MTT).
    wm_curve = tissue_curves(aif, p.tr, np.array([p.wm_cbv / 100 * p.tissue_relaxivity_ratio]),
                             np.array([p.mtt_s]))[0]  # fmt: skip
    leak = np.cumsum(wm_curve) * p.tr
    obs = dr2s - kk[..., None] * leak
    signal = np.asarray(s0, np.float32)[..., None] * np.exp(-p.te * obs).astype(np.float32)
    centre = (affine @ np.r_[(np.asarray(shape) - 1) / 2.0, 1.0])[:3]
    deg_path = drift(p.n_timepoints, p.max_rotation_deg, rng)
    mm_path = drift(p.n_timepoints, p.max_translation_mm, rng)
    motion = []
    for v in range(p.n_timepoints):
        deg, shift = deg_path[v], mm_path[v]
        if np.any(deg != 0) or np.any(shift != 0):
            m = np.eye(4)
            r = rotation_matrix(deg)
            m[:3, :3] = r
            m[:3, 3] = centre - r @ centre + shift
            # Cubic B-spline: a moving head changes position, not sharpness; linear interpolation
            # would blur each volume by its own shift, a signal change at every tissue/CSF edge.
            signal[..., v] = apply_motion(signal[..., v], affine, m, order=3, mode="nearest")
        motion.append({"rotation_deg_xyz": deg.tolist(), "translation_mm": shift.tolist()})
    sigma = p.noise * float(np.median(np.asarray(s0)[tissue]))
    series = rician(signal, sigma, rng)
    return {
        "series": series,
        "aif": aif,
        "times": t,
        "motion": motion,
        "truth": {
            "rcbv": rc,
            "cbv_ml_100ml": 100 * cbv_frac,
            "k2": kk,
            "mtt": mt,
            "noise_sd": sigma,
        },  # fmt: skip
    }


def simulate_dwi(
    s0: np.ndarray,
    adc: np.ndarray,
    *,
    protocol: DwiProtocol = DwiProtocol(),
    seed: int = 0,
) -> dict:
    """Simulated DWI (x, y, z, volumes) with b-values and unit b-vectors; ADC in 1e-6 mm^2/s."""
    rng = np.random.default_rng(seed)
    s0 = np.asarray(s0, np.float32)
    d = np.asarray(adc, np.float64) * 1e-6
    axes = np.eye(3)
    bvals, bvecs, vols = [], [], []
    for b in protocol.bvals:
        dirs = [np.zeros(3)] if b == 0 else [axes[i % 3] for i in range(protocol.directions)]
        for v in dirs:
            bvals.append(float(b))
            bvecs.append(v)
            vols.append(s0 * np.exp(-b * d).astype(np.float32))
    sigma = protocol.noise * float(np.median(s0[s0 > 0]))
    series = rician(np.stack(vols, axis=-1), sigma, rng)
    return {"series": series, "bvals": np.asarray(bvals), "bvecs": np.asarray(bvecs)}


def synthetic_brain(
    shape: tuple[int, int, int] = (64, 64, 16),
    voxel_mm: tuple[float, float, float] = (1.8, 1.8, 5.0),
    seed: int = 0,
    psf_vox: tuple[float, float, float] = (0.8, 0.8, 0.8),
) -> dict:
    """Small planted brain for simulator round trips: tissues, a leaky tumour, an artery.

    Returns affine, s0, rcbv (WM = 1, smooth texture), k2 (1/s, > 0 in the enhancing rim), adc
    (1e-6 mm^2/s) and boolean masks: brain, wm (contralateral normal WM, eroded), gm, csf,
    enhancing, necrosis, oedema, lesion, artery, near/far peritumoural rings."""
    from scipy import ndimage

    from radiogenomics.demo.anatomy import smooth_field

    rng = np.random.default_rng(seed)
    affine = np.diag([*voxel_mm, 1.0])
    affine[:3, 3] = -np.asarray(voxel_mm) * (np.asarray(shape) - 1) / 2
    mm = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) * voxel_mm
    mm = mm - mm.reshape(-1, 3).mean(axis=0)
    radii = np.array([0.42, 0.46, 0.46]) * np.asarray(shape) * voxel_mm
    r = np.sqrt(((mm / radii) ** 2).sum(-1))
    brain = r < 1.0
    gm = brain & (r >= 0.8)
    vent = np.zeros(shape, bool)
    for side in (-1, 1):
        c = np.array([side * 0.12 * radii[0], 0.05 * radii[1], 0.0])
        vent |= (((mm - c) / (radii * [0.07, 0.3, 0.35])) ** 2).sum(-1) < 1
    csf = brain & vent
    tc = np.array([0.45 * radii[0], -0.15 * radii[1], 0.0])  # tumour in the +x hemisphere
    dt = np.sqrt((((mm - tc) / [1, 1, 1.6]) ** 2).sum(-1))  # mm, slightly flattened along z
    rad = 0.18 * radii[0]
    necrosis = brain & (dt < 0.5 * rad)
    enhancing = brain & (dt >= 0.5 * rad) & (dt < rad)
    oedema = brain & (dt >= rad) & (dt < 1.8 * rad)
    lesion = necrosis | enhancing | oedema
    near = brain & (dt >= rad) & (dt < 1.4 * rad) & ~csf
    far = brain & (dt >= 1.4 * rad) & (dt < 1.8 * rad) & ~csf
    wm = brain & ~gm & ~csf & ~lesion
    wm_ref = ndimage.binary_erosion(wm, iterations=1) & (mm[..., 0] < 0)
    artery = np.zeros(shape, bool)
    ax, ay = (int(0.5 * shape[0]), int(0.72 * shape[1]))  # midline, anterior
    artery[ax : ax + 2, ay : ay + 2, :] = True
    artery &= brain
    tex = lambda s: 1.0 + s * smooth_field(shape, rng, 6.0)  # noqa: E731
    rcbv = np.where(gm, 2.0, 1.0) * tex(0.15)
    rcbv = np.where(csf, 0.3, rcbv)
    rcbv = np.where(oedema, 0.9 * tex(0.1), rcbv)
    rcbv = np.where(enhancing, 4.0 * tex(0.2), rcbv)
    rcbv = np.where(necrosis, 0.5, rcbv)
    rcbv = np.where(brain, rcbv, 0.0).astype(np.float32)
    k2 = np.where(enhancing, 0.08, 0.0).astype(np.float32)
    s0 = np.select([artery, csf, enhancing | necrosis, oedema, gm, brain],
                   [900.0, 1600.0, 1300.0, 1250.0, 1150.0, 1000.0], 0.0)  # fmt: skip
    s0 = (s0 * (1 + 0.03 * smooth_field(shape, rng, 4.0))).astype(np.float32)
    s0[~brain] = 0.0
    # A dim scalp shell gives the registration an outline beyond the brain.
    scalp = (r >= 1.05) & (r < 1.15)
    s0[scalp] = 400.0
    # EPI point-spread function: a real image is band-limited, so moving the head resamples a
    # smooth object; a step-edged S0 would make the simulator's own interpolation the dominant
    # motion artefact (a persistent S/S0 offset at every edge once the head has moved).
    s0 = ndimage.gaussian_filter(s0, sigma=psf_vox).astype(np.float32)
    adc = np.select([csf, necrosis, enhancing, oedema, gm, brain],
                    [3000.0, 2300.0, 700.0, 1350.0, 850.0, 750.0], 0.0)  # fmt: skip
    adc = np.where(brain, adc * tex(0.08), 0.0).astype(np.float32)
    return {
        "affine": affine, "s0": s0, "rcbv": rcbv, "k2": k2, "adc": adc,
        "brain": brain, "wm": wm_ref, "gm": gm, "csf": csf, "enhancing": enhancing,
        "necrosis": necrosis, "oedema": oedema, "lesion": lesion, "artery": artery,
        "near": near, "far": far,
    }  # fmt: skip
