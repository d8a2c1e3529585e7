"""Per-session feature from raw DSC (features stage): peritumoural heterogeneity index (PHI).

After Akbari et al. (Radiology 2014) and Bakas et al. (Clin Cancer Res 2017, EGFRvIII): the
DSC time-signal curves of the immediate (near) and distant (far) peritumoural oedema are
projected on their first principal components, and the two clouds are compared by the
Bhattacharyya distance of Gaussian fits. EGFRvIII tumours infiltrate deeply, so their near and far
rings look alike (small distance, homogeneous).

Differences from CaPTk's `EGFRvIIISurrogateIndex` (looked up in CBICA/CaPTk, src/applications/
EGFRvIIISurrogateIndex.{h,cpp}): CaPTk fits a separate PCA to each region and compares the first
3 scores of each in its own basis, on raw (rounded) intensities; it reports the distance as "PHI"
plus the ratio of the near/far maximum drops of the mean curves (first 10 points as baseline).
Here one PCA is fitted to the pooled curves, so both regions are expressed in the same basis (two
separate bases make score distributions incomparable: the sign and order of components are
arbitrary per region), and each curve is divided by its own baseline mean first, so scanner gain
and coil shading do not count as heterogeneity. Both the distance and the Bhattacharyya
coefficient exp(-distance) (1 = identical populations) are returned, with CaPTk's peak-drop ratio.
"""

from __future__ import annotations

import numpy as np

from radiogenomics.errors import SubjectError

STAGE = "peritumoral_heterogeneity"


def bhattacharyya_distance(a: np.ndarray, b: np.ndarray, ridge: float = 1e-9) -> float:
    """Bhattacharyya distance between Gaussian fits of two (n, k) samples."""
    mu = a.mean(axis=0) - b.mean(axis=0)
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eps = ridge * max(float(np.trace(ca) + np.trace(cb)), 1e-30) * np.eye(ca.shape[0])
    ca, cb = ca + eps, cb + eps
    c = 0.5 * (ca + cb)
    _, ld = np.linalg.slogdet(c)
    _, lda = np.linalg.slogdet(ca)
    _, ldb = np.linalg.slogdet(cb)
    return float(mu @ np.linalg.solve(c, mu) / 8.0 + 0.5 * (ld - 0.5 * (lda + ldb)))


def _max_drop(mean_curve: np.ndarray, baseline: slice) -> float:
    """Baseline mean minus minimum of a mean curve (CaPTk's 'maximum drop')."""
    return float(mean_curve[baseline].mean() - mean_curve.min())


def peritumoral_heterogeneity_index(
    dsc_4d: np.ndarray,
    near_mask: np.ndarray,
    far_mask: np.ndarray,
    *,
    n_components: int = 3,
    baseline: slice = slice(0, 10),
    file: str = "",
) -> dict[str, float]:
    """PHI of a 4-D DSC series between the near and far peritumoural masks (see module doc).

    Returns phi_distance (Bhattacharyya distance; 0 = same distribution), phi_homogeneity
    (exp(-distance), in (0, 1]), peak_drop_ratio (near/far), explained_variance of the kept
    components, and the voxel counts used."""
    data = np.asarray(dsc_4d, np.float64)
    near = np.asarray(near_mask, bool)
    far = np.asarray(far_mask, bool)
    if data.ndim != 4 or near.shape != data.shape[:3] or far.shape != data.shape[:3]:
        raise SubjectError(
            f"PHI needs a 4-D series and two masks on its grid (series {data.shape}, "
            f"near {near.shape}, far {far.shape})",
            stage=STAGE,
            file=file,
        )
    curves = []
    for m in (near & ~far, far & ~near):
        c = data[m]
        base = c[:, baseline].mean(axis=1)
        ok = (base > 0) & (c.std(axis=1) > 0)  # CaPTk, too, drops flat curves
        curves.append(c[ok] / base[ok, None])
    need = n_components + 2
    if min(len(c) for c in curves) < need:
        raise SubjectError(
            f"PHI needs >= {need} usable voxels per region, have near {len(curves[0])}, "
            f"far {len(curves[1])}",
            stage=STAGE,
            file=file,
        )
    pooled = np.concatenate(curves)
    mean = pooled.mean(axis=0)
    _, s, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    k = min(n_components, vt.shape[0])
    # Deterministic component signs: the largest loading of each component is positive.
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    basis = vt[:k] * signs[:, None]
    scores = [(c - mean) @ basis.T for c in curves]
    dist = bhattacharyya_distance(scores[0], scores[1])
    drops = [_max_drop(data[m].mean(axis=0), baseline) for m in (near, far)]
    return {
        "phi_distance": dist,
        "phi_homogeneity": float(np.exp(-dist)),
        "peak_drop_ratio": drops[0] / drops[1] if drops[1] != 0 else float("nan"),
        "explained_variance": float((s[:k] ** 2).sum() / max((s**2).sum(), 1e-30)),
        "near_voxels": int(len(curves[0])),
        "far_voxels": int(len(curves[1])),
    }
