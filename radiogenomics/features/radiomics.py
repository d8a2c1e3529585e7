"""Features stage, family `radiomics`: pyradiomics features with filters computed once per sequence.

pyradiomics' extractor (`RadiomicsFeatureExtractor.execute`) re-reads, re-filters (LoG, wavelet)
and re-checks the image for every ROI. Filter responses depend on the image, not the ROI (without
resampling pyradiomics filters the whole image), so `extract_shared` builds each filtered image once
per sequence and runs the feature classes on every ROI's crop of it. It calls the same pyradiomics
functions in the same order as `execute`, so values are identical (checked in
`benchmarks/radiomics_speed.py` and the tests). Shape features depend only on the mask, so they are
computed once per ROI and stored under sequence `all`.

Settings that make the filtered image ROI-dependent (pyradiomics' resampling crops to the ROI
before filtering; LBP3D uses the mask) fall back to one `execute` call per ROI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiogenomics.features.common import (
    QC,
    Rois,
    file_sha256,
    image_problem,
    load_volume,
    missing_reason,
    nan_block,
    perturb_rois,
    spacing_mm,
)
from radiogenomics.paths import feature_column

FAMILY = "radiomics"
# Image types whose filtered image depends on the mask: cannot be shared between ROIs.
MASK_DEPENDENT_IMAGE_TYPES = frozenset({"LBP3D"})
log = logging.getLogger(__name__)


def make_extractor(params_path: str | Path):
    """A pyradiomics extractor configured from a parameter file (quiet logging)."""
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    return featureextractor.RadiomicsFeatureExtractor(str(params_path))


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine radiomics values (provenance)."""
    import pywt
    import radiomics
    import scipy

    return {
        "pyradiomics": radiomics.__version__,
        "numpy": np.__version__,
        "simpleitk": sitk.Version_VersionString(),
        "pywavelets": pywt.__version__,
        "scipy": scipy.__version__,
    }


def shared_unsupported(extractor) -> str:
    """Why filtered images cannot be shared between ROIs with these settings ('' if they can)."""
    s = extractor.settings
    if s.get("interpolator") is not None and s.get("resampledPixelSpacing") is not None:
        return "resampling crops to each ROI before filtering"
    if s.get("preCrop"):
        return "preCrop crops to each ROI before filtering"
    bad = MASK_DEPENDENT_IMAGE_TYPES & set(extractor.enabledImagetypes)
    if bad:
        return f"image type(s) {sorted(bad)} depend on the mask"
    return ""


def is_shape_feature(key: str) -> bool:
    """True for pyradiomics shape keys (mask-only, sequence-independent)."""
    return "_shape_" in key or "_shape2D_" in key


def clean(result: Mapping) -> dict[str, float]:
    """Drop pyradiomics diagnostics and make every value a Python float."""
    # glcm_MCC comes from eigenvalues and can carry a zero imaginary part.
    return {k: float(np.real(v)) for k, v in result.items() if not k.startswith("diagnostics_")}


def extract_per_roi(extractor, image: sitk.Image, masks: Mapping[str, sitk.Image]) -> dict:
    """Reference path: one `extractor.execute` per ROI -> {roi: {key: value}}."""
    return {roi: clean(extractor.execute(image, mask)) for roi, mask in masks.items()}


def _prepare_mask(extractor, image: sitk.Image, mask: sitk.Image) -> tuple:
    """Mirror `execute`: validate the mask, resegment; returns (shape mask, texture mask, bbox)."""
    from radiomics import imageoperations

    s = extractor.settings
    mask = imageoperations.getMask(mask, **s)
    bbox, corrected = imageoperations.checkMask(image, mask, **s)
    if corrected is not None:
        mask = corrected
    texture_mask = mask
    if s.get("resegmentRange") is not None:
        texture_mask = imageoperations.resegmentMask(image, mask, **s)
        # execute() re-derives the bounding box from the resegmented mask and uses it for shape too.
        bbox, _ = imageoperations.checkMask(image, texture_mask, **s)
    shape_mask = texture_mask if s.get("resegmentShape", False) else mask
    return shape_mask, texture_mask, bbox


def extract_shared(
    extractor,
    image: sitk.Image,
    masks: Mapping[str, sitk.Image],
    shape: bool = True,
    cache: dict | None = None,
) -> tuple[dict, dict[str, str]]:
    """Filters once per image, features per ROI -> ({roi: {key: value}}, {roi: problem}).

    `cache` (a dict kept by the caller) reuses validated masks and bounding boxes across
    sequences on the same grid; it is ignored with re-segmentation, which depends on intensities.
    """
    from radiomics import imageoperations

    if shared_unsupported(extractor):
        log.info("radiomics: per-ROI extraction (%s)", shared_unsupported(extractor))
        return _per_roi_guarded(extractor, image, masks)
    s = extractor.settings.copy()
    if s.get("normalize", False):
        image = imageoperations.normalizeImage(image, **s)
    prepared, problems = {}, {}
    if cache is not None and s.get("resegmentRange") is not None:
        cache = None
    for roi, mask in masks.items():
        if cache is not None and roi in cache:
            prepared[roi] = cache[roi]
            continue
        try:
            prepared[roi] = _prepare_mask(extractor, image, mask)
        except (ValueError, AssertionError) as exc:  # pyradiomics' rejection of an ROI
            problems[roi] = f"pyradiomics rejected ROI {roi}: {exc}"
            continue
        if cache is not None:
            cache[roi] = prepared[roi]
    out: dict[str, dict] = {roi: {} for roi in prepared}
    if not prepared:
        return out, problems
    if shape:
        for roi, (shape_mask, _, bbox) in prepared.items():
            out[roi].update(clean(extractor.computeShape(image, shape_mask, bbox, **s)))
    any_mask = next(iter(prepared.values()))[1]
    for image_type, custom in extractor.enabledImagetypes.items():
        args = s.copy()
        args.update(custom)
        generator = getattr(imageoperations, f"get{image_type}Image")(image, any_mask, **args)
        for filtered, name, kwargs in generator:
            for roi, (_, texture_mask, bbox) in prepared.items():
                img_c, mask_c = imageoperations.cropToTumorMask(filtered, texture_mask, bbox)
                out[roi].update(clean(extractor.computeFeatures(img_c, mask_c, name, **kwargs)))
            del filtered  # keep only one filtered image alive at a time
    return out, problems


def _per_roi_guarded(extractor, image: sitk.Image, masks: Mapping[str, sitk.Image]):
    """Per-ROI fallback with the same problem reporting as `extract_shared`."""
    out, problems = {}, {}
    for roi, mask in masks.items():
        try:
            out[roi] = clean(extractor.execute(image, mask))
        except (ValueError, AssertionError) as exc:
            problems[roi] = f"pyradiomics rejected ROI {roi}: {exc}"
    return out, problems


@lru_cache(maxsize=8)
def _feature_keys(params_path: str, sha: str) -> tuple[str, ...]:
    """All pyradiomics keys these parameters produce (from a small seeded synthetic image)."""
    extractor = make_extractor(params_path)
    rng = np.random.default_rng(0)
    arr = rng.normal(0.0, 1.0, size=(24, 24, 24))
    mask = np.zeros(arr.shape, dtype=np.uint8)
    mask[6:18, 6:18, 6:18] = 1
    img = sitk.GetImageFromArray(arr)
    msk = sitk.GetImageFromArray(mask)
    msk.CopyInformation(img)
    res, problems = extract_shared(extractor, img, {"x": msk})
    if problems:
        raise RuntimeError(f"cannot enumerate radiomics features for {params_path}: {problems}")
    return tuple(res["x"])


def feature_keys(params_path: str | Path) -> tuple[str, ...]:
    """Cached list of the pyradiomics keys for a parameter file."""
    return _feature_keys(str(params_path), file_sha256(params_path))


def mask_image(mask: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A nibabel-ordered (i, j, k) boolean mask as a SimpleITK label image on `reference`'s grid."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(mask.transpose(2, 1, 0)).astype(np.uint8))
    img.CopyInformation(reference)
    return img


def zscore_in_brain(image: sitk.Image, brain: np.ndarray | None) -> sitk.Image:
    """Z-score a map inside the brain mask so a fixed bin width means the same on every map."""
    arr = sitk.GetArrayFromImage(image).astype(np.float64)
    sel = brain.transpose(2, 1, 0) if brain is not None else np.ones(arr.shape, dtype=bool)
    vals = arr[sel]
    std = float(vals.std())
    out = (arr - float(vals.mean())) / (std if std > 0 else 1.0)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(image)
    return img


def column_name(seq: str, roi: str, key: str) -> str:
    """Full column name; shape keys are sequence-independent (`all`)."""
    return feature_column(FAMILY, "all" if is_shape_feature(key) else seq, roi, key)


def extract_radiomics(
    seqs: Iterable[str],
    seq_paths: Mapping[str, Path],
    manifest: Mapping,
    rois: Rois,
    qc: QC,
    params_path: str | Path,
    zscore_seqs: Iterable[str] = (),
    brain: np.ndarray | None = None,
    perturb: Iterable[str] = (),
    perturbations: Iterable[str] = ("erode1", "dilate1"),
    min_voxels: int = 20,
) -> tuple[dict, dict, list[tuple[str, str, float]]]:
    """Radiomics features of one subject/session -> (features, provenance, perturbed long rows).

    `perturb` ROIs are also measured after 1-voxel erosion/dilation in the same filter pass
    (robustness inputs); those rows are (perturbation, column, value).
    """
    seqs, zscore_seqs = list(seqs), set(zscore_seqs)
    keys = feature_keys(params_path)
    shape_keys = [k for k in keys if is_shape_feature(k)]
    other_keys = [k for k in keys if not is_shape_feature(k)]
    roi_names = list(rois.masks)
    feats = nan_block(FAMILY, ["all"], roi_names, shape_keys)
    feats.update(nan_block(FAMILY, seqs, roi_names, other_keys))
    extractor = make_extractor(params_path)
    prov: dict = {f"version_{k}": v for k, v in package_versions().items()}
    prov.update({"params_file": Path(params_path).name, "params_sha256": file_sha256(params_path)})
    prov["mode"] = "per_roi" if shared_unsupported(extractor) else "shared_filters"
    for roi, mask in rois.masks.items():
        prov[f"{roi}__mask_voxels"] = int(mask.sum()) if mask is not None else np.nan
    usable = {r: m for r, m in rois.masks.items() if m is not None and r not in rois.problems}
    for roi in rois.masks:
        if roi not in usable:
            qc.add(rois.problems.get(roi, f"ROI {roi} unusable"), rois.paths.get(roi))
    # Perturbed copies of the robustness ROIs ride along in the same filter pass.
    extra: dict[str, tuple[str, str]] = {}
    for how in perturbations:
        prois = perturb_rois(rois, how, min_voxels, [r for r in perturb if r in usable], brain)
        for roi, m in prois.masks.items():
            if m is not None and roi not in prois.problems:
                usable[f"{roi}@{how}"] = m
                extra[f"{roi}@{how}"] = (roi, how)
    long_rows: list[tuple[str, str, float]] = []
    shape_done = False
    mask_cache: dict = {}  # every sequence is on the ROI grid (checked), so masks validate once
    for seq in seqs:
        if seq not in seq_paths:
            qc.add(missing_reason(manifest, seq))
            continue
        arr, aff = load_volume(seq_paths[seq], what=seq)
        why = image_problem(arr, aff, rois, seq)
        if not why and not np.isfinite(arr).all():
            # Filters spread a NaN across the image, so the whole sequence is unusable.
            why = f"{int((~np.isfinite(arr)).sum())} non-finite voxel(s) in {seq}"
        if why:
            qc.add(why, seq_paths[seq])
            continue
        prov[f"{seq}__spacing_mm"] = "x".join(f"{v:.4g}" for v in spacing_mm(aff))
        image = sitk.ReadImage(str(seq_paths[seq]))
        if seq in zscore_seqs:
            image = zscore_in_brain(image, brain)
        masks = {name: mask_image(m, image) for name, m in usable.items()}
        res, problems = extract_shared(extractor, image, masks, not shape_done, mask_cache)
        shape_done = shape_done or bool(res)
        for why_roi in problems.values():
            qc.add(f"{seq}: {why_roi}", seq_paths[seq])
        for name, values in res.items():
            if name in extra:
                roi, how = extra[name]
                long_rows += [(how, column_name(seq, roi, k), v) for k, v in values.items()]
            else:
                feats.update({column_name(seq, name, k): v for k, v in values.items()})
                if name in perturb:
                    long_rows += [
                        ("original", column_name(seq, name, k), v) for k, v in values.items()
                    ]
    return feats, prov, long_rows


def make_extractor_from_dict(params: dict):
    """A pyradiomics extractor from an in-memory parameter dictionary (quiet logging)."""
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    ext = featureextractor.RadiomicsFeatureExtractor()
    ext._applyParams(paramsDict=params)  # the public loaders only accept files/JSON strings
    return ext
