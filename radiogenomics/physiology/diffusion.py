"""Physiologic maps (map computation before intake): DWI -> ADC (+ IVIM D, f, D*), DTI -> FA, MD.

Diffusivities are returned in mm^2/s; the session writer stores them in 1e-6 mm^2/s, the unit of
the project's ADC maps (normal WM ~ 750, CSF ~ 3000). b-values are in s/mm^2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radiogenomics.errors import SubjectError

STAGE = "physiologic_maps_dwi"


# ----------------------------------------------------------------------------------- gradients
def read_gradients(
    bval_path: str | Path, bvec_path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """b-values (N,) and unit b-vectors (N, 3) from FSL-style text files (SubjectError if bad)."""
    try:
        bvals = np.loadtxt(bval_path, ndmin=1).astype(np.float64).ravel()
    except Exception as exc:  # missing file, non-numeric text
        raise SubjectError(
            f"cannot read b-values: {type(exc).__name__}: {exc}", stage=STAGE, file=bval_path
        ) from exc
    if bvec_path is None:
        return bvals, None
    try:
        bvecs = np.loadtxt(bvec_path, ndmin=2).astype(np.float64)
    except Exception as exc:
        raise SubjectError(
            f"cannot read b-vectors: {type(exc).__name__}: {exc}", stage=STAGE, file=bvec_path
        ) from exc
    if bvecs.shape[0] == 3 and bvecs.shape[1] != 3:
        bvecs = bvecs.T
    elif bvecs.shape[0] == 3 and bvecs.shape[1] == 3:
        bvecs = bvecs.T  # FSL writes 3 rows; a 3x3 file is read that way too
    if bvecs.ndim != 2 or bvecs.shape[1] != 3:
        raise SubjectError(
            f"b-vectors must be 3 x N or N x 3, got shape {bvecs.shape}",
            stage=STAGE,
            file=bvec_path,
        )
    return bvals, bvecs


def check_gradients(
    bvals: np.ndarray,
    bvecs: np.ndarray | None,
    n_volumes: int,
    *,
    file: str | Path = "",
    bvec_file: str | Path | None = None,
) -> None:
    """b-values (and b-vectors) must match the volume count and be finite, non-negative."""
    b = np.asarray(bvals, np.float64)
    if b.size != n_volumes:
        raise SubjectError(f"{b.size} b-values for {n_volumes} volumes", stage=STAGE, file=file)
    if not np.all(np.isfinite(b)) or np.any(b < 0):
        raise SubjectError("b-values must be finite and >= 0", stage=STAGE, file=file)
    if bvecs is not None:
        v = np.asarray(bvecs)
        if v.shape[0] != n_volumes:
            raise SubjectError(
                f"{v.shape[0]} b-vectors for {n_volumes} volumes",
                stage=STAGE,
                file=bvec_file if bvec_file is not None else file,
            )


def shells(bvals: np.ndarray, tol: float = 60.0) -> np.ndarray:
    """Shell label per volume: b-values within `tol` of a shell's smallest b share it."""
    b = np.asarray(bvals, np.float64)
    order = np.argsort(b, kind="stable")
    labels = np.empty(b.size, int)
    current, start = -1, -np.inf
    for i in order:
        if b[i] - start > tol:
            current += 1
            start = b[i]
        labels[i] = current
    return labels


def trace_signals(
    signals: np.ndarray, bvals: np.ndarray, b_max: float = np.inf, tol: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-shell trace signal (geometric mean over directions) of (N, volumes) signals.

    Returns (mean b of each shell, (N, shells) signals) for the shells with b <= b_max."""
    b = np.asarray(bvals, np.float64)
    lab = shells(b, tol)
    keep_b, cols = [], []
    s = np.clip(np.asarray(signals, np.float64), 1e-6, None)
    for k in np.unique(lab):
        sel = lab == k
        bk = float(b[sel].mean())
        if bk > b_max:
            continue
        keep_b.append(bk)
        cols.append(np.exp(np.log(s[:, sel]).mean(axis=1)))
    return np.asarray(keep_b), np.stack(cols, axis=1) if cols else np.zeros((s.shape[0], 0))


# ------------------------------------------------------------------------------------------ ADC
def adc_loglinear(
    signals: np.ndarray,
    bvals: np.ndarray,
    b_max: float = 1000.0,
    tol: float = 60.0,
    *,
    file: str | Path = "",
) -> np.ndarray:
    """ADC (mm^2/s) by least squares of ln(trace S) on b over the shells with b <= b_max."""
    b, s = trace_signals(signals, bvals, b_max + tol / 2, tol)
    if b.size < 2 or np.ptp(b) <= 0:
        raise SubjectError(
            f"ADC needs at least 2 distinct b-values <= {b_max:g} s/mm^2, "
            f"have {sorted(b.tolist())}",
            stage=STAGE,
            file=file,
        )
    y = np.log(s)
    bc = b - b.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ bc / (bc @ bc)
    return -slope


# ----------------------------------------------------------------------------------------- IVIM
def ivim_segmented(
    signals: np.ndarray,
    bvals: np.ndarray,
    b_split: float = 200.0,
    dstar_grid: np.ndarray | None = None,
    tol: float = 5.0,
    *,
    file: str | Path = "",
) -> dict[str, np.ndarray]:
    """Segmented IVIM fit of (N, volumes) signals: D, f, D* (mm^2/s) and S0.

    D and the tissue intercept come from a log-linear fit over b >= b_split (perfusion has
    decayed there); f = 1 - intercept/S0; D* minimises the bi-exponential residual over a
    log-spaced grid with D and f fixed (vectorised, no per-voxel optimiser)."""
    b, s = trace_signals(signals, bvals, np.inf, tol)
    hi = b >= b_split
    if b.size < 4 or hi.sum() < 2 or (~hi).sum() < 2 or b.min() > tol:
        raise SubjectError(
            f"IVIM needs b = 0, >= 2 b-values below and >= 2 at or above {b_split:g} s/mm^2 "
            f"(>= 4 in all), have {sorted(b.tolist())}",
            stage=STAGE,
            file=file,
        )
    y = np.log(s[:, hi])
    bh = b[hi]
    bc = bh - bh.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ bc / (bc @ bc)
    intercept = y.mean(axis=1) - slope * bh.mean()
    d = np.clip(-slope, 0, None)
    s0 = s[:, np.argmin(b)]
    f = np.clip(1.0 - np.exp(intercept) / s0, 0.0, 1.0)
    grid = np.geomspace(3e-3, 0.5, 200) if dstar_grid is None else np.asarray(dstar_grid)
    norm = s / s0[:, None]
    tissue = (1 - f)[:, None] * np.exp(-np.outer(d, b))
    resid = norm - tissue  # (N, B), should equal f exp(-b D*)
    best_err = np.full(s.shape[0], np.inf)
    dstar = np.full(s.shape[0], grid[0])
    for g in grid:
        err = ((resid - f[:, None] * np.exp(-b * g)[None, :]) ** 2).sum(axis=1)
        better = err < best_err
        best_err[better] = err[better]
        dstar[better] = g
    return {"D": d, "f": f, "Dstar": dstar, "S0": s0}


# ------------------------------------------------------------------------------------------ DTI
def dti_fa_md(
    dwi: np.ndarray,
    bvals: np.ndarray,
    bvecs: np.ndarray,
    mask: np.ndarray | None = None,
    fit_method: str = "WLS",
) -> tuple[np.ndarray, np.ndarray]:
    """FA and MD (mm^2/s) maps of a 4-D DWI with dipy's TensorModel."""
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    gtab = gradient_table(np.asarray(bvals, np.float64), bvecs=np.asarray(bvecs, np.float64))
    fit = TensorModel(gtab, fit_method=fit_method).fit(np.asarray(dwi), mask=mask)
    fa = np.nan_to_num(np.asarray(fit.fa, np.float64))
    md = np.nan_to_num(np.asarray(fit.md, np.float64))
    return fa, md
