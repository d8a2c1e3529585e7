"""Physiologic maps (map computation before intake): DCE -> Ktrans, ve, vp by (extended) Tofts.

Own numpy/scipy implementation (dcmri 0.6.20 installs with numpy 2.3 and its forward model agrees
with ours, see tests, but it fits one curve at a time through generic model objects; a map needs
a vectorised fit). Times are in seconds, Ktrans is returned in 1/min (the literature's unit),
kep in 1/min, ve and vp as fractions. Concentrations in mM.

Fits: the linearised form of Murase (MRM 2004),
  C(t) = (Ktrans + kep vp) int Cp - kep int C + vp Cp(t),
solved for all voxels at once, optionally refined per voxel by non-linear least squares on the
exact convolution of a piecewise-linear Cp with exp(-kep t).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from radiogenomics.errors import SubjectError

STAGE = "physiologic_maps_dce"
R1_GD_3T = 3.3  # 1/(mM s), gadolinium chelate longitudinal relaxivity assumed at 3 T
T10_ASSUMED_S = 1.4  # documented assumed native T1 of brain tissue at 3 T when no T1 map exists


def spgr_concentration(
    signal: np.ndarray,
    baseline: slice,
    tr: float,
    flip_deg: float,
    t10: float | np.ndarray = T10_ASSUMED_S,
    r1: float = R1_GD_3T,
) -> np.ndarray:
    """Spoiled-gradient-echo signal -> concentration (mM) with the QIBA steady-state inversion."""
    s = np.asarray(signal, np.float64)
    s0 = s[..., baseline].mean(axis=-1, keepdims=True)
    t10 = np.asarray(t10, np.float64)
    if t10.ndim and t10.shape != s.shape[:-1]:
        raise ValueError("t10 must be scalar or one value per curve")
    t10 = t10[..., None] if t10.ndim else t10
    cos_a = np.cos(np.deg2rad(flip_deg))
    e10 = np.exp(-tr / t10)
    a = (1 - e10) / (1 - cos_a * e10) * s / np.where(s0 > 0, s0, np.nan)
    # A -> 1 means saturation: R1 undefined; clip keeps the log finite.
    a = np.clip(a, None, 1 - 1e-6)
    r1t = -np.log((1 - a) / (1 - cos_a * a)) / tr
    return np.nan_to_num((r1t - 1 / t10) / r1)


def _cumtrapz(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid integral along the last axis (same length, starting at 0)."""
    inc = 0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(t)
    return np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(inc, axis=-1)], axis=-1)


def enhancement_onset(mean_curve: np.ndarray, min_enhancement: float = 0.05, file: str = "") -> int:
    """Index of the first enhanced volume of a mean DCE signal curve (= baseline volume count).

    The series must enhance by `min_enhancement` of its baseline somewhere; the onset is then the
    first volume above baseline + max(3 sd, 2 % of the peak enhancement), where the curve starts
    to rise. The population AIF is aligned on it: a late onset (the first volume past a 5 % rise,
    as this used to be) shifts the AIF by volumes and biased Ktrans by ~10 % in the round trip.
    """
    curve = np.asarray(mean_curve, np.float64)
    head = curve[: max(2, len(curve) // 10)]
    mu, sd = float(head.mean()), float(head.std())
    peak = float(curve.max())
    if peak - mu < min_enhancement * abs(mu):
        raise SubjectError(
            f"no enhancement: peak {peak:.4g} vs baseline {mu:.4g} (< {min_enhancement:.0%})",
            stage=STAGE,
            file=file,
        )
    onset = int(np.argmax(curve > mu + max(3 * sd, 0.02 * (peak - mu))))
    if onset < 2:
        raise SubjectError("no baseline before enhancement onset", stage=STAGE, file=file)
    return onset


def tofts_forward(
    t: np.ndarray, cp: np.ndarray, ktrans: float, kep: float, vp: float = 0.0
) -> np.ndarray:
    """Extended Tofts tissue curve (mM); ktrans, kep in 1/min; exact for piecewise-linear Cp."""
    t = np.asarray(t, np.float64)
    cp = np.asarray(cp, np.float64)
    k = kep / 60.0
    out = np.zeros_like(cp)
    acc = 0.0
    for i in range(1, t.size):
        dt = t[i] - t[i - 1]
        a, b = cp[i - 1], cp[i]
        if k * dt < 1e-8:
            seg = 0.5 * (a + b) * dt
            e = 1.0
        else:
            e = np.exp(-k * dt)
            seg = a * (1 - e) / k + (b - a) / dt * (k * dt - 1 + e) / k**2
        acc = acc * e + seg
        out[i] = acc
    return vp * cp + (ktrans / 60.0) * out


def tofts_lls(
    ct: np.ndarray, cp: np.ndarray, t: np.ndarray, extended: bool = True
) -> dict[str, np.ndarray]:
    """Linear least-squares (Murase) Tofts fit of (N, T) curves: Ktrans, kep (1/min), ve, vp."""
    c = np.atleast_2d(np.asarray(ct, np.float64))
    t = np.asarray(t, np.float64)
    icp = _cumtrapz(np.asarray(cp, np.float64), t)
    ic = _cumtrapz(c, t)
    cols = [np.broadcast_to(icp, c.shape), -ic]
    if extended:
        cols.append(np.broadcast_to(np.asarray(cp, np.float64), c.shape))
    x = np.stack(cols, axis=-1)  # (N, T, p)
    xtx = np.einsum("ntp,ntq->npq", x, x)
    xty = np.einsum("ntp,nt->np", x, c)
    coef = np.linalg.solve(xtx + 1e-12 * np.eye(x.shape[-1]), xty[..., None])[..., 0]
    kep = coef[:, 1]
    vp = coef[:, 2] if extended else np.zeros(c.shape[0])
    ktrans = coef[:, 0] - kep * vp
    with np.errstate(divide="ignore", invalid="ignore"):
        ve = np.where(kep > 0, ktrans / kep, np.nan)
    return {"Ktrans": ktrans * 60.0, "kep": kep * 60.0, "ve": ve, "vp": vp}


def tofts_nlls(
    ct: np.ndarray, cp: np.ndarray, t: np.ndarray, extended: bool = True
) -> dict[str, np.ndarray]:
    """Non-linear least-squares Tofts fit per curve, started from the linear solution."""
    c = np.atleast_2d(np.asarray(ct, np.float64))
    init = tofts_lls(c, cp, t, extended)
    out = {k: np.full(c.shape[0], np.nan) for k in ("Ktrans", "kep", "ve", "vp")}
    for i in range(c.shape[0]):
        k0 = float(np.clip(np.nan_to_num(init["Ktrans"][i], nan=0.1), 1e-4, 5))
        e0 = float(np.clip(np.nan_to_num(init["kep"][i], nan=0.5), 1e-3, 20))
        v0 = float(np.clip(init["vp"][i], 0, 0.5)) if extended else 0.0
        p0 = [k0, e0, v0] if extended else [k0, e0]

        def resid(p, row=c[i]):
            vp = p[2] if extended else 0.0
            return tofts_forward(t, cp, p[0], p[1], vp) - row

        lo = [0.0, 1e-4, 0.0][: len(p0)]
        hi = [10.0, 50.0, 1.0][: len(p0)]
        fit = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac")
        out["Ktrans"][i], out["kep"][i] = fit.x[0], fit.x[1]
        out["vp"][i] = fit.x[2] if extended else 0.0
        out["ve"][i] = fit.x[0] / fit.x[1]
    return out
