"""Physiologic maps (map computation before intake): DSC perfusion time series -> CBV, CBF, MTT,
leakage K2, peak height, percentage signal recovery, and WM-normalised rCBV / rCBF.

Pure functions on numpy arrays; voxel curves are rows of an (N, T) array and the time axis is last.
Conventions (checked against the OSIPI LCB_BNI_USA worked example, see tests):
- dR2*(t) = -ln(S/S0)/TE for one echo; ln((S1/S10)/(S2/S20))/(TE2-TE1) for two echoes, which
  cancels the T1 (S0) change of leaky tissue. S0 is the mean over the detected baseline.
- Boxerman-Schmainda-Weisskoff: dR2*_meas = K1 dR2*_ref - K2 int_0^t dR2*_ref, a linear least
  squares per voxel; corrected = dR2*_meas + K2 int dR2*_ref. K2 is in 1/s, positive for T1-dominant
  leakage (enhancing tumour on a single late echo), negative for T2*-dominant leakage.
- CBV = 100 kappa int(dR2*_tissue) / int(dR2*_AIF) in mL/100 mL (kappa = kH/rho, 1 by default as
  in the OSIPI example; it cancels in rCBV). CBF = 6000 kappa max(F R(t)) in mL/100 mL/min from
  block-circulant SVD deconvolution with per-voxel oscillation-index truncation (Wu et al., MRM
  2003), which is insensitive to the AIF's delay; MTT = 60 CBV/CBF in s.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from radiogenomics.errors import SubjectError

log = logging.getLogger(__name__)
STAGE = "physiologic_maps_dsc"


@dataclass(frozen=True)
class DscSettings:
    """Settings of DSC map computation (defaults suit clinical 1-2 s TR, 40-120 volumes)."""

    min_timepoints: int = 20
    skip_initial: int = 2  # steady-state volumes dropped from the baseline
    min_baseline: int = 5
    bolus_sd: float = 4.0  # arrival: brain-mean signal this many baseline sd below baseline
    min_drop: float = 0.03  # a bolus must lower the brain-mean signal by at least this fraction
    aif_voxels: int = 10
    aif_min_peak_ratio: float = 2.0  # AIF candidates peak >= this x the brain's median peak
    oi_max: float = 0.095
    svd_thresholds: tuple[float, ...] = (
        0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6,
    )  # fmt: skip
    kappa: float = 1.0  # kH / rho; 1 keeps the OSIPI example's convention
    psr_tail_fraction: float = 0.2  # PSR's post-bolus signal: mean of this last fraction
    min_wm_voxels: int = 20
    leak_exclude_percentile: float = 10.0  # BSW reference drops voxels with extreme tails


@dataclass(frozen=True)
class MotionSettings:
    """Rigid motion correction of a series (ANTs, Mattes MI on a downsampled copy)."""

    enabled: bool = True
    target_mm: float = 3.5  # in-plane block averaging to about this voxel size before registering
    sampling_rate: float = 0.05  # 0.1 costs 2.4x the CPU for no measurable accuracy here
    bins: int = 32
    iterations: tuple[int, ...] = (30, 10)
    shrink_factors: tuple[int, ...] = (2, 1)
    smoothing_sigmas: tuple[float, ...] = (1.0, 0.0)
    # Resampling of the moved volumes. Linear interpolation blurs each volume by an amount that
    # varies with its shift: at the tissue/CSF edges of a T2*-weighted series that is a signal
    # change the bolus never made (SPM's realignment reslices with a 4th-degree B-spline).
    interpolator: str = "bSpline"
    # The registration target lies on a grid offset by half a voxel: on the moving volumes' own
    # grid, interpolation makes mutual information peak at zero shift, and sub-voxel motion was
    # underestimated by ~15 % (demo DSC, known truth).
    offset_reference: bool = True


@dataclass
class Timing:
    """Baseline and bolus indices of a series."""

    baseline: slice
    arrival: int
    minimum: int
    n_timepoints: int


@dataclass
class DscResult:
    """Maps (3-D float32 arrays, keyed by map name) and metadata of one DSC computation."""

    maps: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- timing
def detect_timing(
    mean_signal: np.ndarray, settings: DscSettings = DscSettings(), *, file: str | Path = ""
) -> Timing:
    """Baseline window and bolus arrival from the brain-mean signal curve (SubjectError if none)."""
    s = np.asarray(mean_signal, np.float64)
    n = s.size
    if n < settings.min_timepoints:
        raise SubjectError(
            f"DSC series has {n} time points, at least {settings.min_timepoints} needed",
            stage=STAGE,
            file=file,
        )
    k0 = settings.skip_initial
    # Light smoothing (3-point median) so a single noisy dip is not the bolus.
    sm = np.convolve(np.pad(s, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    t_min = int(np.argmin(sm[k0:])) + k0
    ref = np.median(sm[k0 : max(k0 + 1, t_min)]) if t_min > k0 else sm[k0]
    drop = (ref - sm[t_min]) / max(abs(ref), 1e-12)
    if not np.isfinite(drop) or drop < settings.min_drop:
        raise SubjectError(
            f"no detectable bolus: brain-mean signal drops {100 * drop:.1f}% "
            f"(at least {100 * settings.min_drop:.0f}% expected)",
            stage=STAGE,
            file=file,
        )
    if t_min - k0 < settings.min_baseline:
        raise SubjectError(
            f"no baseline: the signal minimum is at time point {t_min}, fewer than "
            f"{settings.min_baseline} pre-bolus points after the {k0} skipped",
            stage=STAGE,
            file=file,
        )
    # Arrival: walk back from the minimum to the last point within bolus_sd of the baseline.
    end = t_min
    for it in range(3):  # refine the baseline estimate with the window it implies
        base = s[k0:end]
        if it == 0:  # robust first pass: the window still holds the bolus' leading edge
            mu = float(np.median(base))
            sd = 1.4826 * float(np.median(np.abs(base - mu)))
        else:
            mu = float(base.mean())
            sd = float(base.std(ddof=1)) if base.size > 1 else 0.0
        sd = max(sd, 0.002 * abs(mu))
        below = sm < mu - settings.bolus_sd * sd
        arrival = t_min
        while arrival > k0 and below[arrival - 1]:
            arrival -= 1
        end = max(arrival, k0 + 1)
    if arrival - k0 < settings.min_baseline:
        raise SubjectError(
            f"no baseline: bolus arrives at time point {arrival}, fewer than "
            f"{settings.min_baseline} pre-bolus points after the {k0} skipped",
            stage=STAGE,
            file=file,
        )
    return Timing(baseline=slice(k0, arrival), arrival=arrival, minimum=t_min, n_timepoints=n)


# ---------------------------------------------------------------------------------- relaxivity
def delta_r2s_single(signal: np.ndarray, baseline: slice, te: float) -> np.ndarray:
    """dR2*(t) = -ln(S(t)/S0)/TE (1/s), S0 the baseline mean; curves along the last axis."""
    s = np.asarray(signal, np.float64)
    s0 = s[..., baseline].mean(axis=-1, keepdims=True)
    ratio = np.clip(s / np.where(s0 > 0, s0, np.nan), 1e-3, None)
    return np.nan_to_num(-np.log(ratio) / float(te))


def delta_r2s_dual(
    signal1: np.ndarray, signal2: np.ndarray, baseline: slice, te1: float, te2: float
) -> np.ndarray:
    """Dual-echo dR2*(t) = ln((S1/S10)/(S2/S20))/(TE2-TE1) (1/s): free of T1 (S0) changes."""
    if te2 <= te1:
        raise ValueError(f"echo times must increase (TE1={te1}, TE2={te2})")
    s1, s2 = np.asarray(signal1, np.float64), np.asarray(signal2, np.float64)
    s10 = s1[..., baseline].mean(axis=-1, keepdims=True)
    s20 = s2[..., baseline].mean(axis=-1, keepdims=True)
    r1 = np.clip(s1 / np.where(s10 > 0, s10, np.nan), 1e-3, None)
    r2 = np.clip(s2 / np.where(s20 > 0, s20, np.nan), 1e-3, None)
    return np.nan_to_num(np.log(r1 / r2) / (float(te2) - float(te1)))


# ------------------------------------------------------------------------------------------ AIF
def curve_shape(curves: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Peak height, time to peak (s) and full width at half maximum (s) of each curve."""
    c = np.asarray(curves, np.float64)
    peak = c.max(axis=-1)
    ttp = c.argmax(axis=-1).astype(np.float64) * dt
    above = c >= 0.5 * peak[..., None]
    fwhm = above.sum(axis=-1).astype(np.float64) * dt
    return {"peak": peak, "ttp": ttp, "fwhm": fwhm}


def select_aif(
    dr2s: np.ndarray,
    dt: float,
    settings: DscSettings = DscSettings(),
    timing: Timing | None = None,
) -> tuple[np.ndarray | None, np.ndarray, dict]:
    """Automatic AIF: curves with early, high, narrow peaks (Mouridsen-style ranking).

    Returns (mean curve of the chosen voxels or None when too few qualify, their row indices, a
    summary). Shapes are those of 3-point smoothed curves. Candidates peak at least
    `aif_min_peak_ratio` x the brain's median peak, after the bolus arrival, from a flat baseline
    (|baseline mean| < 10% of the peak) and with a positive area (motion spikes fail these); the
    earliest-peaking half is ranked by peak / FWHM."""
    # Shapes of 3-point smoothed curves: a single noisy point must not make a peak.
    smooth = dr2s.copy()
    smooth[:, 1:-1] = (dr2s[:, :-2] + dr2s[:, 1:-1] + dr2s[:, 2:]) / 3.0
    shape = curve_shape(smooth, dt)
    peak, ttp, fwhm = shape["peak"], shape["ttp"], shape["fwhm"]
    med = float(np.median(peak[peak > 0])) if np.any(peak > 0) else 0.0
    ok = (peak >= settings.aif_min_peak_ratio * med) & (med > 0)
    ok &= np.trapezoid(dr2s, dx=dt, axis=-1) > 0
    if timing is not None:
        ok &= ttp >= timing.arrival * dt
        ok &= np.abs(dr2s[:, timing.baseline].mean(axis=-1)) < 0.1 * peak
    cand = np.flatnonzero(ok)
    info = {"brain_median_peak": med, "candidates": int(cand.size)}
    if cand.size < max(3, settings.aif_voxels // 2):
        return None, cand, info
    early = cand[ttp[cand] <= np.median(ttp[cand])]
    score = peak[early] / np.maximum(fwhm[early], dt)
    # Stable ordering: ties resolved by voxel index, so the choice is deterministic.
    order = np.lexsort((early, -score))
    chosen = early[order[: settings.aif_voxels]]
    aif = dr2s[chosen].mean(axis=0)
    info.update(
        voxels=int(chosen.size),
        peak=float(aif.max()),
        ttp_s=float(aif.argmax() * dt),
        fwhm_s=float(curve_shape(aif[None], dt)["fwhm"][0]),
    )
    return aif, chosen, info


def parker_aif(t: np.ndarray) -> np.ndarray:
    """Parker et al. (MRM 2006) population AIF, blood concentration in mM, t in s from injection."""
    tm = np.asarray(t, np.float64) / 60.0
    a1, a2, t1, t2, s1, s2 = 0.809, 0.330, 0.17046, 0.365, 0.0563, 0.132
    alpha, beta, s, tau = 1.050, 0.1685, 38.078, 0.483
    g1 = a1 / (s1 * np.sqrt(2 * np.pi)) * np.exp(-((tm - t1) ** 2) / (2 * s1**2))
    g2 = a2 / (s2 * np.sqrt(2 * np.pi)) * np.exp(-((tm - t2) ** 2) / (2 * s2**2))
    return g1 + g2 + alpha * np.exp(-beta * tm) / (1 + np.exp(-s * (tm - tau)))


def population_aif(n: int, dt: float, arrival: int, scale: float = 1.0) -> np.ndarray:
    """Parker AIF on the series' time grid, its 5%-of-peak onset moved to the detected arrival."""
    fine = np.arange(0, 120.0, 0.1)
    c = parker_aif(fine)
    onset = fine[np.argmax(c >= 0.05 * c.max())]
    t = (np.arange(n) - arrival) * dt + onset
    return np.where(t >= 0, np.interp(t, fine, c, right=c[-1]), 0.0) * scale


# ------------------------------------------------------------------------------------- leakage
def cumulative_integral(curve: np.ndarray, dt: float) -> np.ndarray:
    """Running integral along the last axis as cumsum x dt (the BSW regressor of Boxerman 2006
    and of the OSIPI example; a trapezoid shifts it half a sample and CBV by ~2%)."""
    return np.cumsum(np.asarray(curve, np.float64), axis=-1) * dt


def bsw_correct(
    dr2s: np.ndarray, reference: np.ndarray, dt: float, fit: slice = slice(None)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxerman-Schmainda-Weisskoff leakage correction: (corrected curves, K1, K2 in 1/s).

    Least squares of each curve on [ref, -int ref] over the `fit` time points."""
    y = np.asarray(dr2s, np.float64)
    ref = np.asarray(reference, np.float64)
    integ = cumulative_integral(ref, dt)
    x = np.stack([ref, -integ], axis=1)[fit]  # (T', 2)
    coef = np.linalg.pinv(x) @ y[..., fit].reshape(-1, x.shape[0]).T  # (2, N)
    k1 = coef[0].reshape(y.shape[:-1])
    k2 = coef[1].reshape(y.shape[:-1])
    return y + k2[..., None] * integ, k1, k2


def leakage_reference(
    dr2s: np.ndarray, timing: Timing, settings: DscSettings = DscSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-brain non-enhancing reference: mean curve of voxels with unremarkable tails.

    Voxels whose post-bolus mean dR2* lies outside the [p, 100-p] percentiles of the brain
    (T1 leakage pulls tails negative, T2* leakage positive) are left out. Returns (curve, used)."""
    n = dr2s.shape[-1]
    tail = dr2s[:, max(timing.minimum + 1, n - max(3, int(0.25 * n))) :].mean(axis=1)
    p = settings.leak_exclude_percentile
    lo, hi = np.percentile(tail, [p, 100 - p])
    used = (tail >= lo) & (tail <= hi)
    return dr2s[used].mean(axis=0), used


# ------------------------------------------------------------------------------- deconvolution
def oscillation_index(residue: np.ndarray) -> np.ndarray:
    """Wu et al. (MRM 2003) oscillation index of residue functions along the last axis."""
    r = np.asarray(residue, np.float64)
    second = np.abs(r[..., 2:] - 2 * r[..., 1:-1] + r[..., :-2]).sum(axis=-1)
    fmax = r.max(axis=-1)
    return second / (r.shape[-1] * np.where(fmax > 0, fmax, np.inf))


def circulant_deconvolve(
    tissue: np.ndarray,
    aif: np.ndarray,
    dt: float,
    settings: DscSettings = DscSettings(),
    chunk: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Block-circulant truncated-SVD deconvolution with per-voxel oscillation-index threshold.

    Returns (max of F R(t) in 1/s, the chosen threshold as a fraction of the largest singular
    value). A circulant matrix is diagonalised by the DFT, so its singular values are |DFT(aif)|
    dt and truncating the SVD equals zeroing those Fourier components (zero-padded to 2T, which
    makes the result insensitive to the AIF's delay); each voxel takes the smallest threshold whose
    residue has OI <= oi_max, else the largest."""
    c = np.asarray(tissue, np.float64)
    t = c.shape[-1]
    length = 2 * t
    a_f = np.fft.rfft(np.asarray(aif, np.float64), n=length) * dt
    mag = np.abs(a_f)
    smax = mag.max()
    thresholds = np.asarray(sorted(settings.svd_thresholds), np.float64)
    flow = np.zeros(c.shape[0], np.float64)
    chosen = np.full(c.shape[0], thresholds[-1])
    for lo in range(0, c.shape[0], chunk):
        c_f = np.fft.rfft(c[lo : lo + chunk], n=length, axis=-1)
        todo = np.ones(c_f.shape[0], bool)
        for j, thr in enumerate(thresholds):
            inv = np.where(mag >= thr * smax, 1.0 / np.where(mag > 0, a_f, 1.0), 0.0)
            res = np.fft.irfft(c_f[todo] * inv, n=length, axis=-1)
            last = j == thresholds.size - 1
            ok = (oscillation_index(res) <= settings.oi_max) | last
            idx = np.flatnonzero(todo)[ok]
            flow[lo + idx] = res[ok].max(axis=-1)
            chosen[lo + idx] = thr
            todo[idx] = False
            if not todo.any():
                break
    return flow, chosen


# ------------------------------------------------------------------------------- curve metrics
def peak_height(dr2s: np.ndarray, timing: Timing) -> np.ndarray:
    """Peak height: maximum dR2* (1/s) after bolus arrival."""
    return np.asarray(dr2s)[..., timing.arrival :].max(axis=-1)


def percentage_signal_recovery(
    signal: np.ndarray, timing: Timing, settings: DscSettings = DscSettings()
) -> np.ndarray:
    """PSR (%) = (S_post - S_min) / (S0 - S_min) x 100, S_post the mean of the series' tail."""
    s = np.asarray(signal, np.float64)
    s0 = s[..., timing.baseline].mean(axis=-1)
    smin = s[..., timing.arrival :].min(axis=-1)
    n = s.shape[-1]
    tail = max(2, int(round(settings.psr_tail_fraction * n)))
    spost = s[..., n - tail :].mean(axis=-1)
    den = s0 - smin
    return np.where(den > 0, 100.0 * (spost - smin) / np.where(den > 0, den, 1.0), np.nan)


def normalise_to_reference(
    values: np.ndarray,
    reference_mask: np.ndarray,
    *,
    min_voxels: int = 20,
    what: str = "map",
    file: str | Path = "",
) -> tuple[np.ndarray, float]:
    """Divide a map by its median in the reference mask (e.g. normal-appearing WM)."""
    v = np.asarray(values, np.float64)
    ref = v[np.asarray(reference_mask, bool) & np.isfinite(v)]
    if ref.size < min_voxels:
        raise SubjectError(
            f"{what}: reference region has {ref.size} usable voxels, at least {min_voxels} needed",
            stage=STAGE,
            file=file,
        )
    med = float(np.median(ref))
    if not np.isfinite(med) or med <= 0:
        raise SubjectError(
            f"{what}: reference median {med} is not positive", stage=STAGE, file=file
        )
    return v / med, med


# ----------------------------------------------------------------------------- motion correction
def _block_mean(data: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Average non-overlapping blocks (edges cropped) of a 3-D array."""
    fx, fy, fz = factors
    sx, sy, sz = (d // f * f for d, f in zip(data.shape, factors, strict=True))
    d = data[:sx, :sy, :sz]
    return d.reshape(sx // fx, fx, sy // fy, fy, sz // fz, fz).mean(axis=(1, 3, 5))


def _half_voxel_offset(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """The image resampled (cubic B-spline) at the centres of a grid shifted by half a voxel."""
    data = np.asarray(img.dataobj, np.float64)
    shifted = ndimage.shift(data, (-0.5, -0.5, -0.5), order=3, mode="nearest")
    affine = np.array(img.affine, np.float64)
    affine[:3, 3] = affine[:3, :3] @ np.full(3, 0.5) + affine[:3, 3]
    return nib.Nifti1Image(shifted.astype(np.float32), affine)


def motion_correct(
    echoes: list[np.ndarray],
    affine: np.ndarray,
    reference_volumes: slice,
    settings: MotionSettings = MotionSettings(),
    seed: int = 0,
) -> tuple[list[np.ndarray], list[dict]]:
    """Rigid registration (ANTs, seeded, one ITK thread) of every volume to the baseline mean.

    The first echo (shortest TE: least bolus signal change) is registered; each volume's rigid
    world transform is applied to that volume of every echo. Registration runs on a block-averaged
    copy (about `target_mm` in-plane) for speed; transforms are applied at full resolution."""
    import ants

    from radiogenomics.imaging.common import seed_ants, to_ants, voxel_sizes
    from radiogenomics.imaging.coregister import rigid_parameters

    seed_ants(seed)
    data = [np.asarray(e, np.float32) for e in echoes]
    zooms = voxel_sizes(affine)
    factors = tuple(max(1, int(round(settings.target_mm / z))) if z < settings.target_mm else 1
                    for z in zooms)  # fmt: skip
    low_aff = np.array(affine, np.float64)
    low_aff[:3, :3] = affine[:3, :3] * np.asarray(factors)
    # The block centre: half a block minus half a voxel along each axis.
    low_aff[:3, 3] = affine[:3, :3] @ ((np.asarray(factors) - 1) / 2.0) + affine[:3, 3]
    ref_full = data[0][..., reference_volumes].mean(axis=-1)
    full_img = nib.Nifti1Image(ref_full, affine)
    low_img = nib.Nifti1Image(_block_mean(ref_full, factors).astype(np.float32), low_aff)
    fixed_low = to_ants(_half_voxel_offset(low_img) if settings.offset_reference else low_img)
    fixed_full = to_ants(full_img)
    out = [np.empty_like(d) for d in data]
    params = []
    with tempfile.TemporaryDirectory(prefix="dsc_moco_") as tmp:
        for v in range(data[0].shape[-1]):
            moving_low = to_ants(low_img, _block_mean(data[0][..., v], factors).astype(np.float32))
            reg = ants.registration(
                fixed=fixed_low,
                moving=moving_low,
                type_of_transform="Rigid",
                aff_metric="mattes",
                aff_sampling=settings.bins,
                aff_random_sampling_rate=settings.sampling_rate,
                aff_iterations=tuple(settings.iterations),
                aff_shrink_factors=tuple(settings.shrink_factors),
                aff_smoothing_sigmas=tuple(settings.smoothing_sigmas),
                outprefix=str(Path(tmp) / f"v{v:04d}_"),
            )
            fwd = list(reg["fwdtransforms"])
            for e, d in enumerate(data):
                moved = ants.apply_transforms(
                    fixed=fixed_full,
                    moving=to_ants(full_img, d[..., v]),
                    transformlist=fwd,
                    interpolator=settings.interpolator,
                )
                out[e][..., v] = moved.numpy()
            rot, trans = rigid_parameters(fwd[0])
            params.append({"volume": v, "rotation_deg": rot, "translation_mm": trans})
    return out, params


# ---------------------------------------------------------------------------------- full maps
def compute_dsc_maps(
    echoes: list[np.ndarray],
    echo_times: list[float],
    tr: float,
    brain_mask: np.ndarray,
    *,
    wm_mask: np.ndarray | None = None,
    exclude_from_reference: np.ndarray | None = None,
    aif: np.ndarray | None = None,
    settings: DscSettings = DscSettings(),
    file: str | Path = "",
) -> DscResult:
    """All DSC maps from one or two echoes of a (motion-corrected) 4-D series.

    `echoes`: 4-D arrays (x, y, z, t), one per echo time (seconds); `tr` the volume spacing (s).
    With two echoes dR2* is dual-echo and PSR/PH use the later echo. `aif` (dR2* units, length T)
    overrides automatic selection. `exclude_from_reference` (e.g. the lesion) is left out of the
    BSW reference. rCBV/rCBF are written when `wm_mask` has enough voxels."""
    if len(echoes) not in (1, 2) or len(echoes) != len(echo_times):
        raise ValueError("one or two echoes with one echo time each")
    mask = np.asarray(brain_mask, bool)
    if mask.sum() < 10:
        raise SubjectError("brain mask has fewer than 10 voxels", stage=STAGE, file=file)
    late = np.asarray(echoes[-1])
    curves = [np.asarray(e)[mask].astype(np.float64) for e in echoes]  # (N, T) each
    timing = detect_timing(curves[-1].mean(axis=0), settings, file=file)
    dt = float(tr)
    if len(echoes) == 2:
        dr2s = delta_r2s_dual(curves[0], curves[1], timing.baseline, *echo_times)
    else:
        dr2s = delta_r2s_single(curves[0], timing.baseline, echo_times[0])
    warnings: list[str] = []
    meta: dict = {
        "method": "DSC: dual-echo" if len(echoes) == 2 else "DSC: single-echo",
        "tr_s": dt,
        "echo_times_s": [float(e) for e in echo_times],
        "n_timepoints": int(late.shape[-1]),
        "baseline": [timing.baseline.start, timing.baseline.stop],
        "bolus_arrival": timing.arrival,
        "signal_minimum": timing.minimum,
        "kappa": settings.kappa,
        "oi_max": settings.oi_max,
    }
    # AIF: automatic from the brain's own curves (before leakage correction), else Parker.
    if aif is not None:
        aif_curve = np.asarray(aif, np.float64)
        meta["aif"] = {"source": "given"}
    else:
        aif_curve, _, info = select_aif(dr2s, dt, settings, timing)
        if aif_curve is None:
            aif_curve = population_aif(dr2s.shape[-1], dt, timing.arrival)
            warnings.append(
                f"automatic AIF found {info['candidates']} candidate voxels; population "
                "(Parker 2006) AIF used: absolute CBV/CBF/MTT are on an arbitrary scale, "
                "rCBV/rCBF are valid"
            )
            meta["aif"] = {"source": "population (Parker 2006, mM as dR2* units)", **info}
        else:
            meta["aif"] = {"source": "automatic", **info}
    # Leakage (BSW) against the non-enhancing whole-brain reference.
    ref_rows = np.ones(dr2s.shape[0], bool)
    if exclude_from_reference is not None:
        ref_rows &= ~np.asarray(exclude_from_reference, bool)[mask]
    ref_curve, used = leakage_reference(dr2s[ref_rows], timing, settings)
    fit = slice(timing.baseline.start, None)
    corrected, _, k2 = bsw_correct(dr2s, ref_curve, dt, fit)
    meta["leakage"] = {
        "method": "Boxerman-Schmainda-Weisskoff (K2 in 1/s)",
        "reference_voxels": int(used.sum()),
    }
    window = slice(timing.baseline.start, None)  # the whole series, as in the OSIPI example
    aif_area = np.trapezoid(aif_curve[window], dx=dt)
    if not aif_area > 0:
        raise SubjectError("AIF has no positive area", stage=STAGE, file=file)
    cbv = 100.0 * settings.kappa * np.trapezoid(corrected[:, window], dx=dt, axis=-1) / aif_area
    cbv_uncorr = 100.0 * settings.kappa * np.trapezoid(dr2s[:, window], dx=dt, axis=-1) / aif_area
    flow, thr = circulant_deconvolve(corrected[:, window], aif_curve[window], dt, settings)
    cbf = 6000.0 * settings.kappa * flow
    mtt = np.where(cbf > 0, 60.0 * cbv / np.where(cbf > 0, cbf, 1.0), np.nan)
    ph = peak_height(dr2s, timing)
    psr = percentage_signal_recovery(curves[-1], timing, settings)
    vox = {
        "cbv": cbv,
        "cbv_uncorrected": cbv_uncorr,
        "cbf": cbf,
        "mtt": mtt,
        "k2": k2,
        "ph": ph,
        "psr": psr,
    }
    meta["svd_threshold_median"] = float(np.median(thr))
    if wm_mask is not None:
        wm = np.asarray(wm_mask, bool)[mask]
        for name in ("cbv", "cbf"):
            rel, ref_val = normalise_to_reference(
                vox[name], wm, min_voxels=settings.min_wm_voxels, what=f"r{name}", file=file
            )
            vox[f"r{name}"] = rel
            meta[f"r{name}_reference"] = {
                "region": "normal-appearing white matter (given mask)",
                "voxels": int(wm.sum()),
                "median": ref_val,
            }
    else:
        warnings.append("no white-matter mask given: rCBV/rCBF not computed")
    maps = {}
    for name, values in vox.items():
        vol = np.zeros(mask.shape, np.float32)
        vol[mask] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        maps[name] = vol
    meta["warnings"] = warnings
    return DscResult(maps=maps, meta=meta)
