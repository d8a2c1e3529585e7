"""Habitats stage: per-subject feature maps, voxel sampling and the population habitat model.

The habitat model follows the review's method: voxelwise clustering of multiparametric maps inside
the tumour, fitted once on the pooled voxels of the *discovery* cohorts and then applied to every
subject (discovery and validation), so habitat codes mean the same thing everywhere.

Feature definition (documented once, used by both fitting and applying):

* primary maps (default ``adc``, ``rcbv``) are ratios to normal-appearing white matter (NAWM):
  ``rcbv`` is already WM-normalised by preprocessing; every other primary map (``adc`` -> nADC)
  is divided by its median inside the NAWM mask of :func:`nawm_mask`. Ratios are log-transformed
  (floored at ``LOG_FLOOR``) because they are positive and right-skewed, so that k-means'
  Euclidean distance treats a doubling the same at any level.
* fallback structural sequences (default ``t1ce``, ``flair``), used when the primary maps are
  missing, become robust z-scores against NAWM ((x - median) / IQR), which removes any
  per-subject scanner gain or offset left by preprocessing.
* the log/robust values are then standardised with mean and SD of the pooled discovery sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.errors import SubjectError
from radiogenomics.io import atomic_path, load_nifti, read_json, write_tsv
from radiogenomics.paths import subject_seed

log = logging.getLogger(__name__)

STAGE = "habitats"
LOG_FLOOR = 0.05  # ratios below 5 % of NAWM are noise-level; a floor keeps log() finite
NAMED_HABITATS = ("hypervascular_cellular", "hypovascular_cellular", "nonviable")
NAWM_MARGIN_VOX = 3  # voxels kept between the tumour and the NAWM reference
NAWM_MIN_VOXELS = 100
ALREADY_WM_NORMALISED = frozenset({"rcbv"})
SILHOUETTE_MAX_SAMPLES = 4000


# ----------------------------------------------------------------------------- subject maps


@dataclass
class FeatureSet:
    """Normalised voxel features of one subject for one input set (primary or fallback)."""

    kind: str  # "primary" or "fallback"
    inputs: tuple[str, ...]
    values: dict[str, np.ndarray] = field(default_factory=dict)  # full 3-D normalised maps
    reason: str = ""  # non-empty when this set is unavailable

    @property
    def available(self) -> bool:
        """True when every input map was found and normalised."""
        return bool(self.inputs) and not self.reason and len(self.values) == len(self.inputs)


@dataclass
class SubjectMaps:
    """Everything the habitat stage needs from one subject/session."""

    roi: np.ndarray  # bool, the analysed ROI
    reference: Any  # nibabel image giving grid and affine
    primary: FeatureSet
    fallback: FeatureSet
    voxel_ml: float
    structural: dict[str, np.ndarray] = field(default_factory=dict)  # raw, for overlays


def manifest_sequences(prep_manifest: str | Path) -> dict[str, Path]:
    """Sequence name -> file of the preprocessed manifest (paths relative to the manifest)."""
    path = Path(prep_manifest)
    if not path.exists() or path.stat().st_size == 0:
        raise SubjectError("preprocessing manifest missing or empty", stage=STAGE, file=path)
    man = read_json(path)
    seqs = man.get("sequences", {}) or {}
    return {name: path.parent / str(fname) for name, fname in seqs.items()}


def nawm_mask(
    brain: np.ndarray,
    tumour: np.ndarray,
    t1: np.ndarray | None = None,
    flair: np.ndarray | None = None,
    margin_vox: int = NAWM_MARGIN_VOX,
) -> np.ndarray:
    """Normal-appearing white matter: brain minus dilated tumour, bright on T1, not bright on FLAIR.

    WM is the brightest tissue class on T1-weighted images and makes up roughly 40 % of brain
    parenchyma, so the upper 30 % of T1 intensities (below the 99th percentile, which holds fat
    and vessels) outside the tumour is mostly WM. FLAIR hyperintensities above the 95th
    percentile (residual oedema, gliosis) are removed. Without T1 the candidate region is
    returned and :func:`nawm_median` falls back to the parenchymal histogram peak.
    """
    brain = brain.astype(bool)
    near_tumour = (
        ndimage.binary_dilation(tumour.astype(bool), iterations=margin_vox)
        if margin_vox
        else tumour
    )
    cand = brain & ~near_tumour
    if t1 is not None and cand.sum() >= NAWM_MIN_VOXELS:
        lo, hi = np.percentile(t1[cand], [70, 99])
        cand = cand & (t1 >= lo) & (t1 <= hi)
    if flair is not None and cand.sum() >= NAWM_MIN_VOXELS:
        cand = cand & (flair <= np.percentile(flair[cand], 95))
    return cand


def histogram_peak(values: np.ndarray, bins: int = 128) -> float:
    """Mode of a 1-D sample: peak of a smoothed histogram between its 1st and 99th percentile."""
    lo, hi = np.percentile(values, [1, 99])
    if not hi > lo:
        return float(np.median(values))
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    counts = ndimage.gaussian_filter1d(counts.astype(float), 2.0)
    i = int(np.argmax(counts))
    return float(0.5 * (edges[i] + edges[i + 1]))


def nawm_median(image: np.ndarray, nawm: np.ndarray, t1_used: bool) -> float:
    """Reference level of a positive map in NAWM (median; histogram peak when T1 was unavailable).

    Values above twice the first-pass median are CSF partial volume (ADC of CSF is ~4x that of
    WM) and are dropped before the final median.
    """
    vals = image[nawm]
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size < NAWM_MIN_VOXELS:
        return float("nan")
    if not t1_used:
        return histogram_peak(vals)
    first = np.median(vals)
    return float(np.median(vals[vals <= 2 * first]))


def robust_z(image: np.ndarray, nawm: np.ndarray) -> np.ndarray:
    """(x - median) / IQR against NAWM; removes per-subject gain and offset of structural images."""
    vals = image[nawm]
    vals = vals[np.isfinite(vals)]
    if vals.size < NAWM_MIN_VOXELS:
        return np.full(image.shape, np.nan, dtype=np.float32)
    q1, med, q3 = np.percentile(vals, [25, 50, 75])
    iqr = q3 - q1 if q3 > q1 else (np.std(vals) or 1.0)
    return ((image - med) / iqr).astype(np.float32)


def _load_array(path: Path, what: str) -> tuple[np.ndarray, Any]:
    img = load_nifti(path, stage=STAGE, what=what)
    return np.asarray(img.dataobj, dtype=np.float32), img


def load_subject_maps(
    prep_manifest: str | Path,
    roi_path: str | Path,
    whole_tumor_path: str | Path,
    brain_mask_path: str | Path | None,
    maps: list[str],
    fallback_sequences: list[str],
) -> SubjectMaps:
    """Load ROI and normalised primary/fallback feature maps of one subject/session."""
    seqs = manifest_sequences(prep_manifest)
    roi_img = load_nifti(roi_path, stage=STAGE, what="habitat ROI")
    roi = np.asarray(roi_img.dataobj) > 0
    tumour = (
        np.asarray(load_nifti(whole_tumor_path, stage=STAGE, what="whole-tumour ROI").dataobj) > 0
    )
    shape = roi.shape

    def load(name: str) -> np.ndarray:
        data, img = _load_array(seqs[name], name)
        if data.shape != shape or not np.allclose(img.affine, roi_img.affine, atol=1e-3):
            raise SubjectError(
                f"{name} grid {data.shape} does not match the ROI grid {shape}",
                stage=STAGE,
                file=seqs[name],
            )
        return data

    structural = {s: load(s) for s in ("t1", "t1ce", "flair", "t2") if s in seqs}
    brain = None
    if brain_mask_path is not None and Path(brain_mask_path).exists():
        brain = np.asarray(load_nifti(brain_mask_path, stage=STAGE, what="brain mask").dataobj) > 0
    if brain is None or brain.shape != shape:
        # Without a usable brain mask, any voxel with signal on a structural image counts as brain.
        brain = np.zeros(shape, bool)
        for img in structural.values():
            brain |= img > 0
    t1 = structural.get("t1")
    nawm = nawm_mask(brain, tumour | roi, t1, structural.get("flair"))
    voxel_ml = float(np.prod(roi_img.header.get_zooms()[:3])) / 1000.0

    primary = FeatureSet("primary", tuple(maps))
    missing = [m for m in maps if m not in seqs]
    if not maps:
        primary.reason = "no habitat maps configured"
    elif missing:
        primary.reason = f"missing maps: {', '.join(missing)}"
    else:
        for m in maps:
            data = load(m)
            if m not in ALREADY_WM_NORMALISED:
                ref = nawm_median(data, nawm, t1_used=t1 is not None)
                if not np.isfinite(ref) or ref <= 0:
                    primary.reason = f"no usable normal-appearing WM to normalise {m}"
                    break
                data = data / ref
            primary.values[m] = data

    fallback = FeatureSet("fallback", tuple(fallback_sequences))
    missing_fb = [s for s in fallback_sequences if s not in seqs]
    if not fallback_sequences:
        fallback.reason = "no fallback sequences configured"
    elif missing_fb:
        fallback.reason = f"missing fallback sequences: {', '.join(missing_fb)}"
    else:
        for s in fallback_sequences:
            data = structural[s] if s in structural else load(s)
            z = robust_z(data, nawm)
            if not np.isfinite(z).any():
                fallback.reason = f"no usable normal-appearing WM to normalise {s}"
                break
            fallback.values[s] = z
    return SubjectMaps(roi, roi_img, primary, fallback, voxel_ml, structural)


def transform_values(values: np.ndarray, kind: str) -> np.ndarray:
    """Per-voxel transform before standardisation: log of floored ratios (primary) or identity."""
    if kind == "primary":
        return np.log(np.maximum(values, LOG_FLOOR))
    return values


def roi_matrix(fs: FeatureSet, roi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_voxels x n_inputs) normalised features of finite ROI voxels, and their mask."""
    stack = np.stack([fs.values[m][roi] for m in fs.inputs], axis=1)
    ok = np.all(np.isfinite(stack), axis=1)
    mask = np.zeros(roi.shape, bool)
    mask[roi] = ok
    return stack[ok], mask


def sample_rows(x: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """At most `max_rows` rows without replacement, in their original order (seeded)."""
    if x.shape[0] <= max_rows:
        return x
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(x.shape[0], size=max_rows, replace=False))
    return x[idx]


def subject_sample(
    sm: SubjectMaps, max_voxels: int, seed: int, min_roi_voxels: int
) -> dict[str, np.ndarray]:
    """The voxel sample of one subject as arrays ready for ``np.savez`` (both input sets)."""
    out: dict[str, np.ndarray] = {"roi_voxels": np.array(int(sm.roi.sum()))}
    for fs in (sm.primary, sm.fallback):
        reason = fs.reason
        x = np.zeros((0, len(fs.inputs)), np.float32)
        if not reason:
            x_all, _ = roi_matrix(fs, sm.roi)
            if x_all.shape[0] < min_roi_voxels:
                reason = f"ROI has {x_all.shape[0]} usable voxels < min_roi_voxels {min_roi_voxels}"
            else:
                x = sample_rows(x_all, max_voxels, seed).astype(np.float32)
        out[f"{fs.kind}_x"] = x
        out[f"{fs.kind}_inputs"] = np.array(fs.inputs, dtype=str)
        out[f"{fs.kind}_reason"] = np.array(reason)
    return out


def save_sample(arrays: dict[str, np.ndarray], ids: tuple[str, str, str], path: str | Path) -> None:
    """Write one subject's voxel sample atomically as .npz (no pickles)."""
    cohort, subject, session = ids
    payload = dict(
        arrays, cohort=np.array(cohort), subject=np.array(subject), session=np.array(session)
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **payload)


def load_sample(path: str | Path) -> dict[str, Any] | None:
    """Read a voxel sample; None for a failed subject's empty placeholder."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}


# ----------------------------------------------------------------------------- population model


@dataclass
class HabitatModel:
    """A fitted population habitat model for one input set (primary or fallback)."""

    kind: str
    inputs: tuple[str, ...]
    method: str
    k: int
    mean: np.ndarray
    scale: np.ndarray
    estimator: Any
    code_of_label: np.ndarray  # estimator label -> habitat code (1..k)
    names: tuple[str, ...]  # by code - 1
    centroids: np.ndarray  # (k x n_inputs) back-transformed, by code - 1
    n_subjects: int
    n_voxels: int
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Raw normalised features -> standardised model space."""
        return (transform_values(x, self.kind) - self.mean) / self.scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Habitat codes (1..k) of raw normalised feature rows."""
        if x.shape[0] == 0:
            return np.zeros(0, np.uint8)
        labels = self.estimator.predict(self.standardise(x).astype(np.float64))
        return self.code_of_label[labels].astype(np.uint8)

    def inputs_label(self) -> str:
        """Text for the ``habitat__inputs`` column."""
        return "+".join(("nadc" if m == "adc" else m) for m in self.inputs)


def make_estimator(method: str, k: int, seed: int) -> Any:
    """Unfitted k-means or full-covariance GMM with fixed seeds."""
    # Imported here: segment_tumor only samples voxels and need not pay scikit-learn's import.
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed)
    if method == "gmm":
        return GaussianMixture(n_components=k, covariance_type="full", n_init=3, random_state=seed)
    raise ValueError(f"unknown habitat method {method!r} (kmeans or gmm)")


def choose_k(z: np.ndarray, method: str, k_range: list[int], seed: int) -> tuple[int, pd.DataFrame]:
    """k by lowest BIC (GMM) or highest silhouette (k-means, on a seeded subsample)."""
    from sklearn.metrics import silhouette_score

    rows = []
    rng = np.random.default_rng(seed)
    sub = (
        z
        if z.shape[0] <= SILHOUETTE_MAX_SAMPLES
        else z[np.sort(rng.choice(z.shape[0], SILHOUETTE_MAX_SAMPLES, replace=False))]
    )
    for k in range(int(k_range[0]), int(k_range[1]) + 1):
        est = make_estimator(method, k, seed).fit(z)
        if method == "gmm":
            rows.append({"k": k, "criterion": "bic", "value": float(est.bic(z))})
        else:
            labels = est.predict(sub)
            sil = silhouette_score(sub, labels) if len(np.unique(labels)) > 1 else -1.0
            rows.append({"k": k, "criterion": "silhouette", "value": float(sil)})
    table = pd.DataFrame(rows)
    best = table["value"].idxmin() if method == "gmm" else table["value"].idxmax()
    return int(table.loc[best, "k"]), table


def name_habitats(centroids: np.ndarray, inputs: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Order clusters and name them from centroid positions (returns order of rows and names).

    Rule with ADC and rCBV among the inputs and k >= 3: highest rCBV -> hypervascular_cellular;
    of the rest, lowest ADC -> hypovascular_cellular, then highest ADC -> nonviable; any further
    clusters follow as ``habitat_4..k`` by decreasing rCBV. Otherwise clusters are ordered by
    decreasing value of the first input and named ``habitat_1..k``.
    """
    k = centroids.shape[0]
    if {"adc", "rcbv"} <= set(inputs) and k >= 3:
        a, c = inputs.index("adc"), inputs.index("rcbv")
        rest = list(range(k))
        hyper = max(rest, key=lambda i: (centroids[i, c], -i))
        rest.remove(hyper)
        hypo = min(rest, key=lambda i: (centroids[i, a], i))
        rest.remove(hypo)
        nonv = max(rest, key=lambda i: (centroids[i, a], -i))
        rest.remove(nonv)
        rest.sort(key=lambda i: (-centroids[i, c], i))
        order = [hyper, hypo, nonv, *rest]
        names = list(NAMED_HABITATS) + [f"habitat_{j}" for j in range(4, k + 1)]
        return np.array(order), names
    order = sorted(range(k), key=lambda i: (-centroids[i, 0], i))
    return np.array(order), [f"habitat_{j}" for j in range(1, k + 1)]


def cluster_centres(estimator: Any) -> np.ndarray:
    """Cluster centres in standardised space (k-means centres or GMM means)."""
    return np.asarray(
        estimator.cluster_centers_ if hasattr(estimator, "cluster_centers_") else estimator.means_
    )


def fit_model(
    samples: list[np.ndarray],
    inputs: tuple[str, ...],
    kind: str,
    method: str = "kmeans",
    k: int | str = 3,
    k_range: tuple[int, int] = (2, 6),
    seed: int = 0,
) -> HabitatModel:
    """Fit the population model on per-subject voxel samples (each already bounded in size)."""
    samples = [s for s in samples if s.shape[0] > 0]
    if not samples:
        raise ValueError(f"no discovery voxels available for the {kind} habitat model")
    x = np.concatenate(samples, axis=0).astype(np.float64)
    t = transform_values(x, kind)
    mean = t.mean(axis=0)
    scale = t.std(axis=0)
    scale[scale == 0] = 1.0
    z = (t - mean) / scale
    selection = pd.DataFrame()
    if k == "auto":
        k, selection = choose_k(z, method, list(k_range), seed)
    k = int(k)
    if z.shape[0] < k:
        raise ValueError(f"{z.shape[0]} discovery voxels cannot make {k} habitats")
    est = make_estimator(method, k, seed).fit(z)
    centres = cluster_centres(est) * scale + mean
    back = np.exp(centres) if kind == "primary" else centres
    order, names = name_habitats(back, inputs)
    code_of_label = np.zeros(k, np.uint8)
    code_of_label[order] = np.arange(1, k + 1, dtype=np.uint8)
    return HabitatModel(
        kind=kind,
        inputs=tuple(inputs),
        method=method,
        k=k,
        mean=mean,
        scale=scale,
        estimator=est,
        code_of_label=code_of_label,
        names=tuple(names),
        centroids=back[order],
        n_subjects=len(samples),
        n_voxels=int(x.shape[0]),
        selection=selection,
    )


def fit_population(
    sample_paths: list[str | Path],
    method: str = "kmeans",
    k: int | str = 3,
    k_range: tuple[int, int] = (2, 6),
    seed: int = 0,
) -> dict[str, HabitatModel | None]:
    """Fit primary and fallback models from discovery voxel-sample files (failed ones skipped)."""
    pools: dict[str, list[np.ndarray]] = {"primary": [], "fallback": []}
    inputs: dict[str, tuple[str, ...]] = {}
    for p in sorted(str(s) for s in sample_paths):
        smp = load_sample(p)
        if smp is None:
            log.warning("skipping failed subject sample %s", p)
            continue
        for kind in pools:
            ins = tuple(str(v) for v in np.atleast_1d(smp[f"{kind}_inputs"]))
            if inputs.setdefault(kind, ins) != ins:
                raise ValueError(f"{p}: {kind} inputs {ins} differ from {inputs[kind]}")
            if smp[f"{kind}_reason"]:
                log.info("%s: no %s voxels (%s)", p, kind, smp[f"{kind}_reason"])
                continue
            pools[kind].append(np.asarray(smp[f"{kind}_x"]))
    models: dict[str, HabitatModel | None] = {}
    for kind, pool in pools.items():
        if not any(s.shape[0] for s in pool):
            log.warning("no discovery subject has the %s inputs; no %s model", kind, kind)
            models[kind] = None
            continue
        models[kind] = fit_model(pool, inputs[kind], kind, method, k, k_range, seed)
        m = models[kind]
        log.info(
            "%s model: k=%d from %d subjects / %d voxels; names %s",
            kind,
            m.k,
            m.n_subjects,
            m.n_voxels,
            m.names,
        )
    if all(m is None for m in models.values()):
        # No model, not an error: every session's habitat fractions become NaN with the reason,
        # and the feature tables extracted in the same job (extract_features) are kept.
        log.error("no discovery subject has usable habitat inputs; habitats will be NaN")
    return models


def centroids_table(models: dict[str, HabitatModel | None]) -> pd.DataFrame:
    """One row per (model, habitat): code, name, back-transformed centroid of each input."""
    rows = []
    for kind, m in models.items():
        if m is None:
            continue
        for i, name in enumerate(m.names):
            row = {"model": kind, "code": i + 1, "habitat": name, "inputs": m.inputs_label()}
            for j, inp in enumerate(m.inputs):
                row[f"centroid__{'nadc' if inp == 'adc' else inp}"] = float(m.centroids[i, j])
            row.update(method=m.method, k=m.k, n_subjects=m.n_subjects, n_voxels=m.n_voxels)
            rows.append(row)
    if not rows:
        reason = (
            "no discovery session has voxels to fit habitats on (no imaging cohort, or every "
            "session failed or lacks the habitat inputs)"
        )
        return pd.DataFrame([{"model": "none", "status": "not_run", "reason": reason}])
    return pd.DataFrame(rows)


def save_models(
    models: dict[str, HabitatModel | None], model_path: str | Path, centroids_path: str | Path
) -> None:
    """Write model.joblib and centroids.tsv atomically."""
    with atomic_path(model_path) as tmp:
        joblib.dump(models, tmp)
    write_tsv(centroids_table(models), centroids_path)


def load_models(path: str | Path) -> dict[str, HabitatModel | None]:
    """Read model.joblib written by :func:`save_models`."""
    return joblib.load(path)


def sample_subject(
    ids: tuple[str, str, str],
    paths: dict[str, str | Path | None],
    out_path: str | Path,
    maps: list[str],
    fallback_sequences: list[str],
    max_voxels: int,
    min_roi_voxels: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Rule entry point: load one subject's maps and write its bounded voxel sample."""
    sm = load_subject_maps(
        paths["manifest"],
        paths["roi"],
        paths["whole_tumor"],
        paths.get("brain_mask"),
        maps,
        fallback_sequences,
    )
    arrays = subject_sample(sm, max_voxels, subject_seed(seed, *ids), min_roi_voxels)
    save_sample(arrays, ids, out_path)
    log.info(
        "%s: ROI %d voxels; primary %d sampled (%s); fallback %d sampled (%s)",
        "/".join(ids),
        int(arrays["roi_voxels"]),
        arrays["primary_x"].shape[0],
        arrays["primary_reason"] or "ok",
        arrays["fallback_x"].shape[0],
        arrays["fallback_reason"] or "ok",
    )
    return arrays


def fit_and_save(
    sample_paths: list[str | Path],
    outputs: dict[str, str | Path],
    method: str = "kmeans",
    k: int | str = 3,
    k_range: tuple[int, int] = (2, 6),
    seed: int = 0,
) -> dict[str, HabitatModel | None]:
    """Rule entry point: fit on discovery samples; write model, centroids and k-selection table."""
    models = fit_population(sample_paths, method, k, k_range, seed)
    save_models(models, outputs["model"], outputs["centroids"])
    frames = [m.selection.assign(model=kind) for kind, m in models.items() if m is not None]
    selection = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if selection.empty:
        selection = pd.DataFrame(
            [
                {"model": kind, "k": m.k, "criterion": "fixed", "value": float("nan")}
                for kind, m in models.items()
                if m is not None
            ]
            or [{"model": "none", "status": "not_run", "reason": "no habitat model was fitted"}]
        )
    write_tsv(selection, outputs["selection"])
    return models
