"""Imaging chain (segmentation): classical, model-free tumour segmentation (approximate).

No trained weights. Works on the co-registered sequences (t1, t1ce, t2, flair) in the brain mask:

1. Every sequence is smoothed inside the mask (normalised convolution) and robustly standardised
   (median / IQR of the brain), so the upstream intensity normalisation does not matter.
2. Seed: FLAIR hyperintense outliers (hysteresis thresholds in robust z), away from the brain edge
   and not T1-hyperintense (normal white-matter tracts such as the corticospinal tract are
   FLAIR-bright but T1-bright too; glioma is T1-iso/hypointense). Largest component, holes filled.
3. Whole tumour: two Gaussian mixtures on all sequences, one for normal tissue (brain far from the
   seed) and one for the tumour (the seed); voxels near the seed are assigned by the smoothed
   log-likelihood ratio, must stay FLAIR-abnormal, connect to the seed, holes filled. T2-bright
   voxels the lesion encloses slice-wise join it even when FLAIR-dark: tumour with free-water-like
   signal (T2-FLAIR mismatch) is FLAIR-suppressed inside its bright rim but is still lesion.
4. Subregions: enhancing = t1ce-bright relative to t1 (outlier against normal tissue) within the
   tumour; necrosis / non-enhancing core = what enhancement encloses plus the T1-dark, T2-bright
   mixture class inside the tumour (when it separates clearly); oedema = the rest.
5. Non-enhancing tumours with an ADC map (optional input `adc`): the cellular core is where
   diffusion is restricted relative to vasogenic oedema. Oedema has ADC ~1.4-1.8e-3 mm^2/s,
   cellular glioma ~0.7-1.2e-3 mm^2/s (e.g. Kono et al., AJNR 2001; Server et al., Eur Radiol
   2009), so the a priori cut is `adc_core_max` = 1.25e-3 mm^2/s, between the two ranges. The
   restricted voxels must lie inside the FLAIR lesion deeper than `adc_margin_mm` (normal brain,
   ADC ~0.8e-3, also passes the cut, so partial volume at the lesion edge must not count), form
   one compact component (largest, opened, holes filled) of at least `adc_core_min_ml`. The
   ADC unit (mm^2/s, 1e-3 or 1e-6 mm^2/s) is inferred from the normal brain's median (normal
   parenchyma lies near 0.8e-3 mm^2/s). This region (holes filled, so enclosed cysts count)
   replaces the T1/T2 mixture core, diffusion being the more specific marker of cellularity.
   Barely enhancing tumours keep their enhancing spots as core, with the ADC region (not the
   mixture class). Without ADC (or an implausible one) the mixture core is used, as before;
   `segment_automated_details` says which (`core_method`). Tumours whose enhancement is under
   `minor_enhancing_fraction` of the whole tumour (the "not or barely enhancing" cut of the
   T2-FLAIR mismatch literature) count as non-enhancing here; enhancing tumours keep the
   enhancement-defined core (oedema ADC can approach the cut, so ADC would over-call there).

This is an approximation for cohorts without segmentations, not a replacement for expert or
deep-learning labels; document its use with the results. Measured whole-tumour Dice against the
BraTS-Toolkit fusion on two TCGA-LGG cases: see tests/test_segmentation_automated.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold
from sklearn.mixture import GaussianMixture

log = logging.getLogger(__name__)

SEQUENCES = ("t1", "t1ce", "t2", "flair")
NECROSIS, EDEMA, ENHANCING = 1, 2, 3


@dataclass(frozen=True)
class AutomatedParams:
    """Parameters of the classical method (robust z units unless named _mm/_ml)."""

    smoothing_mm: float = 1.0
    edge_margin_mm: float = 3.0
    seed_high_z: float = 3.0
    seed_low_z: float = 2.0
    seed_opening_mm: float = 2.0
    t1_max_z: float = 1.2
    normal_margin_mm: float = 10.0
    search_radius_mm: float = 15.0
    normal_components: int = 4
    tumour_components: int = 2
    min_flair_z: float = 1.0
    enclosed_t2_z: float = 1.0
    llr_smoothing_mm: float = 1.0
    max_samples: int = 60000
    enhancing_z: float = 2.0
    enhancing_t1ce_z: float = 1.0
    enhancing_search_mm: float = 2.0
    min_component_ml: float = 0.05
    min_enhancing_ml: float = 0.1
    core_separation_z: float = 1.5
    core_min_fraction: float = 0.2
    adc_core_max: float = 1.25e-3
    adc_smoothing_mm: float = 2.0
    adc_margin_mm: float = 3.0
    adc_core_min_ml: float = 0.5
    minor_enhancing_fraction: float = 0.05
    core_separation_d: float = 1.0
    enhancing_wm_low: float = 2.5
    enhancing_wm_high: float = 4.0

    @classmethod
    def from_config(cls, cfg: dict | None) -> AutomatedParams:
        """Build from the `segmentation.automated` config section (unknown keys raise)."""
        cfg = dict(cfg or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - names)
        if unknown:
            raise ValueError(f"unknown segmentation.automated keys: {unknown}")
        return cls(**cfg)


def smooth_in_mask(x: np.ndarray, mask: np.ndarray, sigma_vox: np.ndarray) -> np.ndarray:
    """Gaussian smoothing restricted to the mask (normalised convolution; no edge darkening)."""
    if not np.any(np.asarray(sigma_vox) > 0):
        return np.where(mask, x, 0).astype(np.float32)
    m = mask.astype(np.float32)
    num = ndi.gaussian_filter(np.where(mask, x, 0).astype(np.float32), sigma_vox)
    den = ndi.gaussian_filter(m, sigma_vox)
    return np.where(mask, num / np.maximum(den, 1e-6), 0).astype(np.float32)


def robust_z(x: np.ndarray, ref_mask: np.ndarray) -> np.ndarray:
    """(x - median) / (IQR / 1.349) with statistics from `ref_mask`."""
    v = x[ref_mask]
    med = float(np.median(v))
    q25, q75 = np.percentile(v, [25, 75])
    scale = float(q75 - q25) / 1.349
    if scale <= 0:
        scale = float(np.std(v)) or 1.0
    return ((x - med) / scale).astype(np.float32)


def sample_indices(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most n flat indices of the mask, sorted (sampled without replacement)."""
    idx = np.flatnonzero(mask)
    return idx if idx.size <= n else np.sort(rng.choice(idx, n, replace=False))


def keep_touching(mask: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Connected components of `mask` that overlap `ref`."""
    lab, _ = ndi.label(mask)
    keep = np.unique(lab[ref & mask])
    return np.isin(lab, keep[keep > 0])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a mask, or an empty mask."""
    lab, n = ndi.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (int(np.argmax(sizes)) + 1)


def drop_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Remove components smaller than `min_voxels`."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())
    ok = sizes >= max(1, min_voxels)
    ok[0] = False
    return ok[lab]


def fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """Union of slice-wise hole filling along the three axes (closes cores open in 3-D)."""
    out = mask.copy()
    for ax in range(3):
        moved = np.moveaxis(mask, ax, 0)
        filled = np.stack([ndi.binary_fill_holes(s) for s in moved], 0)
        out |= np.moveaxis(filled, 0, ax)
    return out


def crop_box(mask: np.ndarray, pad: int) -> tuple[slice, ...]:
    """Bounding box of a mask, padded, as slices."""
    idx = np.nonzero(mask)
    return tuple(
        slice(max(0, int(i.min()) - pad), min(s, int(i.max()) + pad + 1))
        for i, s in zip(idx, mask.shape, strict=True)
    )


def standardised_maps(
    images: dict[str, np.ndarray], brain: np.ndarray, spacing: np.ndarray, p: AutomatedParams
) -> dict[str, np.ndarray]:
    """Smoothed, robust-z maps of the available sequences inside the brain."""
    sigma = p.smoothing_mm / np.asarray(spacing, dtype=float)
    return {
        seq: np.where(brain, robust_z(smooth_in_mask(images[seq], brain, sigma), brain), 0)
        for seq in SEQUENCES
        if seq in images
    }


def ball(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Structuring element: voxels within `radius_mm` of the centre (anisotropic spacing)."""
    sp = np.asarray(spacing, dtype=float)
    r = np.floor(radius_mm / sp + 1e-6).astype(int)
    grids = np.meshgrid(*[np.arange(-k, k + 1) * s for k, s in zip(r, sp, strict=True)],
                        indexing="ij")  # fmt: skip
    return sum(g**2 for g in grids) <= radius_mm**2 + 1e-6


def detect_seed(
    z: dict[str, np.ndarray], brain: np.ndarray, spacing: np.ndarray, p: AutomatedParams
) -> np.ndarray:
    """Largest FLAIR (or T2) hyperintense outlier region away from the brain edge, holes filled."""
    key = "flair" if "flair" in z else "t2"
    depth = ndi.distance_transform_edt(brain, sampling=spacing)
    allowed = depth > p.edge_margin_mm
    if "t1" in z:
        allowed &= z["t1"] < p.t1_max_z
    score = np.where(allowed, z[key], -np.inf)
    seed = apply_hysteresis_threshold(score, p.seed_low_z, p.seed_high_z)
    if p.seed_opening_mm > 0:
        # Thin FLAIR-bright structures (cortical ribbon, periventricular caps, sulci where CSF
        # suppression failed) bridge the lesion to remote normal tissue; the lesion survives
        # an opening with a ball of this radius, they do not.
        opened = largest_component(ndi.binary_opening(seed, ball(p.seed_opening_mm, spacing)))
        if opened.any():
            seed = opened
    return ndi.binary_fill_holes(largest_component(seed))


def refine_whole_tumour(
    z: dict[str, np.ndarray],
    brain: np.ndarray,
    seed: np.ndarray,
    spacing: np.ndarray,
    p: AutomatedParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tumour vs normal-tissue mixture likelihood ratio around the seed, FLAIR-abnormal, filled."""
    seqs = [s for s in SEQUENCES if s in z]
    feats = np.stack([z[s] for s in seqs], -1).reshape(-1, len(seqs))
    dist = ndi.distance_transform_edt(~seed, sampling=spacing)
    normal = brain & (dist > p.normal_margin_mm)
    if normal.sum() < 50 * p.normal_components or seed.sum() < 20 * p.tumour_components:
        return seed
    gn = GaussianMixture(
        p.normal_components, covariance_type="full", random_state=0, reg_covar=1e-3
    )
    gn.fit(feats[sample_indices(normal, p.max_samples, rng)])
    gt = GaussianMixture(
        p.tumour_components, covariance_type="full", random_state=0, reg_covar=1e-3
    )
    gt.fit(feats[sample_indices(seed, p.max_samples // 2, rng)])
    cand = np.flatnonzero(brain & (dist <= p.search_radius_mm))
    llr = np.full(seed.size, -20.0, dtype=np.float32)
    llr[cand] = np.clip(gt.score_samples(feats[cand]) - gn.score_samples(feats[cand]), -20, 20)
    llr = ndi.gaussian_filter(llr.reshape(seed.shape), p.llr_smoothing_mm / spacing)
    key = "flair" if "flair" in z else "t2"
    tumour = (llr > 0) & (z[key] > p.min_flair_z) & brain
    tumour = keep_touching(tumour, seed)
    if not tumour.any():
        return seed
    tumour = ndi.binary_fill_holes(tumour) & brain
    return tumour | enclosed_t2_hyperintense(z, tumour, brain, p)


def enclosed_t2_hyperintense(
    z: dict[str, np.ndarray], tumour: np.ndarray, brain: np.ndarray, p: AutomatedParams
) -> np.ndarray:
    """T2-bright voxels the FLAIR lesion encloses slice-wise (FLAIR-suppressed tumour, mismatch);
    without T2, T1-dark ones (fluid is T1-dark as it is T2-bright)."""
    if "flair" not in z:
        return np.zeros_like(tumour)
    if "t2" in z:
        fluid = z["t2"] > p.enclosed_t2_z
    elif "t1" in z or "t1ce" in z:
        fluid = z["t1" if "t1" in z else "t1ce"] < -p.enclosed_t2_z
    else:
        return np.zeros_like(tumour)
    return fill_holes_2d(tumour) & ~tumour & fluid & brain


def normal_tissue_z(x: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Re-standardise a map against normal tissue only."""
    return robust_z(x, normal)


def white_matter_mode(values: np.ndarray, bins: int = 200) -> tuple[float, float]:
    """(mode, sigma) of the brightest substantial peak of a T1-weighted brain histogram.

    In T1-weighted images normal white matter is the brightest large tissue class, so its peak
    is the highest-intensity mode (as in WhiteStripe, Shinohara et al., NeuroImage Clin 2014);
    sigma comes from the peak's upper half-width at half maximum (vessels and enhancement form
    a long upper tail that a standard deviation would absorb)."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.percentile(v, [0.5, 99.5])
    if hi <= lo:
        return float(lo), 1.0
    hist, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    h = ndi.gaussian_filter1d(hist.astype(np.float64), 2.0)
    centres = (edges[:-1] + edges[1:]) / 2
    inner = h[1:-1]
    peaks = np.flatnonzero((inner >= h[:-2]) & (inner >= h[2:]) & (inner > 0.2 * h.max())) + 1
    k = int(peaks[-1]) if peaks.size else int(np.argmax(h))
    above = np.flatnonzero(h[k:] <= h[k] / 2)
    j = k + int(above[0]) if above.size else len(h) - 1
    # Half width at half maximum of a Gaussian is 1.1774 sigma.
    sigma = max(float(centres[j] - centres[k]) / 1.1774, float(centres[1] - centres[0]))
    return float(centres[k]), sigma


def enhancing_region(
    z: dict[str, np.ndarray],
    tumour: np.ndarray,
    normal: np.ndarray,
    spacing: np.ndarray,
    p: AutomatedParams,
) -> np.ndarray:
    """Enhancement within or at the tumour rim: T1ce-bright relative to T1 when T1 exists,
    else T1ce-bright against normal-appearing white matter (`enhancement_method` says which)."""
    if "t1ce" not in z or not normal.any():
        return np.zeros_like(tumour)
    near = ndi.distance_transform_edt(~tumour, sampling=spacing) <= p.enhancing_search_mm
    if "t1" in z:
        diff = normal_tissue_z(z["t1ce"] - z["t1"], normal)
        t1ce = normal_tissue_z(z["t1ce"], normal)
        enh = near & (diff > p.enhancing_z) & (t1ce > p.enhancing_t1ce_z)
    else:
        # Without T1, enhancement is what is brighter on T1ce than normal white matter, the
        # brightest normal parenchyma: hysteresis in units of the WM peak's width.
        mode, sigma = white_matter_mode(z["t1ce"][normal])
        score = np.where(near, (z["t1ce"] - mode) / sigma, -np.inf)
        enh = apply_hysteresis_threshold(score, p.enhancing_wm_low, p.enhancing_wm_high)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    enh = drop_small(enh, int(round(p.min_component_ml / voxel_ml)))
    # Keep only enhancement that touches the tumour body (vessels at the rim do not).
    enh = keep_touching(enh, tumour)
    if enh.sum() * voxel_ml < p.min_enhancing_ml:
        return np.zeros_like(tumour)
    return enh


def core_channels(z: dict[str, np.ndarray]) -> tuple[str, str] | None:
    """(T1-weighted, T2-weighted) pair the non-enhancing core mixture uses, or None.

    The core (necrosis, non-enhancing tumour) is T1-darker and T2-brighter than oedema. Without
    T1 the non-enhancing part of T1ce is the T1-weighted contrast; without T2, FLAIR pairs with
    it, but only T1 darkness separates: necrosis and cysts are often FLAIR-darker than oedema."""
    t1w = "t1" if "t1" in z else "t1ce" if "t1ce" in z else None
    t2w = "t2" if "t2" in z else "flair" if "flair" in z else None
    return (t1w, t2w) if t1w and t2w else None


def nonenhancing_core(
    z: dict[str, np.ndarray], tumour: np.ndarray, p: AutomatedParams, rng: np.random.Generator
) -> np.ndarray:
    """The T1-dark (T2-bright) mixture class inside the tumour when it separates clearly."""
    pair = core_channels(z)
    if pair is None or tumour.sum() < 100:
        return np.zeros_like(tumour)
    with_t2 = pair[1] == "t2"
    # FLAIR does not pair: necrosis is FLAIR-brighter or -darker than oedema from case to case,
    # so a 2-D mixture would split along FLAIR; T1 darkness alone decides then.
    chans = [z[pair[0]], z[pair[1]]] if with_t2 else [z[pair[0]]]
    feats = np.stack(chans, -1).reshape(-1, len(chans))
    g = GaussianMixture(2, covariance_type="full", random_state=0, reg_covar=1e-3)
    g.fit(feats[sample_indices(tumour, p.max_samples // 3, rng)])
    if with_t2:
        contrast = g.means_[:, 1] - g.means_[:, 0]
        core = int(np.argmax(contrast))
        separated = contrast[core] - contrast[1 - core] >= p.core_separation_z
    else:
        core = int(np.argmin(g.means_[:, 0]))
        # Ashman's D of the two classes: D > 2 is a clean split; the darker class is still the
        # best core estimate below that (a cliff at 2 flipped real cases between runs), unless
        # the classes are indistinct (D < 1: one unimodal population, no core of its own).
        d = np.sqrt(2) * abs(np.diff(g.means_[:, 0])[0]) / np.sqrt(g.covariances_.sum())
        separated = d >= p.core_separation_d
    if not separated:
        return np.zeros_like(tumour)
    idx = np.flatnonzero(tumour)
    post = np.zeros(tumour.size, dtype=np.float32)
    post[idx] = g.predict_proba(feats[idx])[:, core]
    post = ndi.gaussian_filter(post.reshape(tumour.shape), 1.0)
    net = (post > 0.5) & tumour
    lab, n = ndi.label(net)
    if n == 0:
        return net
    sizes = np.bincount(lab.ravel())
    ok = sizes >= p.core_min_fraction * sizes[1:].max()
    ok[0] = False
    return ok[lab]


ADC_UNITS = ((3e-3, 1.0), (3.0, 1e-3), (3000.0, 1e-6))  # (upper bound of brain median, unit)


def adc_in_mm2_per_s(adc: np.ndarray, normal: np.ndarray) -> np.ndarray | None:
    """ADC in mm^2/s, unit inferred from the normal brain's median; None if implausible."""
    vals = adc[normal & np.isfinite(adc)]
    if vals.size < 100:
        return None
    med = float(np.median(vals))
    for upper, unit in ADC_UNITS:
        # Normal parenchyma sits near 0.8e-3 mm^2/s: accept medians within ~0.4x-3.7x of it.
        if 0.1 * upper <= med <= upper:
            return (adc * unit).astype(np.float32)
    return None


def restricted_core(
    adc: np.ndarray,
    tumour: np.ndarray,
    brain: np.ndarray,
    normal: np.ndarray,
    spacing: np.ndarray,
    p: AutomatedParams,
) -> np.ndarray | None:
    """Cellular (diffusion-restricted) core inside the lesion; None when ADC is unusable."""
    adc_mm2 = adc_in_mm2_per_s(adc, normal)
    if adc_mm2 is None:
        return None
    # Smooth within the lesion only, so surrounding normal brain does not leak in.
    smooth = smooth_in_mask(adc_mm2, tumour, p.adc_smoothing_mm / spacing)
    depth = ndi.distance_transform_edt(tumour, sampling=spacing)
    cand = tumour & (depth > p.adc_margin_mm) & (smooth < p.adc_core_max) & brain
    cand = ndi.binary_opening(cand)
    core = ndi.binary_fill_holes(fill_holes_2d(largest_component(cand))) & tumour
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if core.sum() * voxel_ml < p.adc_core_min_ml:
        return np.zeros_like(tumour)
    return core


def split_subregions(
    z: dict[str, np.ndarray],
    brain: np.ndarray,
    tumour: np.ndarray,
    seed: np.ndarray,
    spacing: np.ndarray,
    p: AutomatedParams,
    rng: np.random.Generator,
    adc: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Whole tumour -> (labels 1/2/3, how the core was found: enhancement, adc or mixture)."""
    dist = ndi.distance_transform_edt(~tumour, sampling=spacing)
    normal = brain & (dist > p.normal_margin_mm)
    enh = enhancing_region(z, tumour, normal, spacing, p)
    enclosed = fill_holes_2d(ndi.binary_closing(enh, iterations=2)) & ~enh if enh.any() else enh
    net = nonenhancing_core(z, tumour & ~enh, p, rng)
    pair = core_channels(z)
    method = f"{pair[0]}_{pair[1]}_mixture" if pair else "none"
    if pair and not net.any():
        method += " (no separate core class)"
    # Barely enhancing tumours (a few spots) have a non-enhancing core the spots do not bound.
    minor = enh.sum() < p.minor_enhancing_fraction * max(int(tumour.sum()), 1)
    if enh.any() and not minor:
        # With enhancement the core is what it bounds; T1-dark parts elsewhere are oedema.
        net &= ndi.binary_dilation(enh | enclosed, iterations=2)
        method = "enhancement"
    elif enh.any():
        method = f"enhancement+{method}"
    if adc is not None and minor:
        restricted = restricted_core(adc, tumour, brain, normal, spacing, p)
        if restricted is None:
            method += " (adc unusable)"
        else:
            # Diffusion is the more specific cellularity marker (the T1/T2 mixture is dropped);
            # the few enhancing spots stay core, and enclosed cysts are filled below.
            net = restricted
            method = "enhancement+adc_restricted" if enh.any() else "adc_restricted"
    core = ndi.binary_fill_holes(enh | enclosed | net) & brain
    whole = tumour | core
    labels = np.zeros(tumour.shape, dtype=np.uint8)
    labels[whole] = EDEMA
    labels[core] = NECROSIS
    labels[enh] = ENHANCING
    return labels, method


def enhancement_method(images: dict) -> str:
    """How enhancement is found from the sequences present (provenance for tumor_labels.json)."""
    if "t1ce" not in images:
        return "none (no t1ce)"
    return "t1ce_minus_t1" if "t1" in images else "t1ce_vs_white_matter"


def segment_automated(
    images: dict[str, np.ndarray],
    brain: np.ndarray,
    spacing: tuple[float, float, float] | np.ndarray,
    params: AutomatedParams | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Co-registered sequences (+ optional `adc`) + brain mask -> uint8 labels 0/1/2/3."""
    return segment_automated_details(images, brain, spacing, params, seed)[0]


def segment_automated_details(
    images: dict[str, np.ndarray],
    brain: np.ndarray,
    spacing: tuple[float, float, float] | np.ndarray,
    params: AutomatedParams | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """As `segment_automated`, plus provenance: which core method ran and whether ADC was used."""
    p = params or AutomatedParams()
    brain = np.asarray(brain) > 0
    spacing = np.asarray(spacing, dtype=float)
    if "flair" not in images and "t2" not in images:
        raise ValueError("automated segmentation needs flair (or at least t2)")
    out = np.zeros(brain.shape, dtype=np.uint8)
    used = [s for s in (*SEQUENCES, "adc") if s in images]
    info = {
        "adc_available": "adc" in images,
        "inputs": used,
        "core_method": "none (no tumour)",
        "enhancement_method": enhancement_method(images),
    }
    if brain.sum() < 1000:
        raise ValueError(f"brain mask has only {int(brain.sum())} voxels")
    # Work inside the brain's bounding box: distance transforms and filters scale with volume.
    pad = int(np.ceil(max(p.search_radius_mm, p.normal_margin_mm) / spacing.min())) + 2
    box = crop_box(brain, pad)
    b = brain[box]
    imgs = {s: np.asarray(images[s], dtype=np.float32)[box] for s in SEQUENCES if s in images}
    rng = np.random.default_rng(seed)
    z = standardised_maps(imgs, b, spacing, p)
    seed_mask = detect_seed(z, b, spacing, p)
    if not seed_mask.any():
        log.warning("automated segmentation: no FLAIR/T2 hyperintense outlier found")
        return out, info
    tumour = refine_whole_tumour(z, b, seed_mask, spacing, p, rng)
    adc = np.asarray(images["adc"], dtype=np.float32)[box] if "adc" in images else None
    out[box], info["core_method"] = split_subregions(
        z, b, tumour, seed_mask, spacing, p, rng, adc=adc
    )
    if adc is None:
        log.info("automated segmentation: no ADC map; non-enhancing core from %s", used)
    log.info(
        "automated segmentation on %s: enhancement %s, core from %s",
        used,
        info["enhancement_method"],
        info["core_method"],
    )
    return out, info
