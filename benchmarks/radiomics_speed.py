"""Features stage benchmark: shared-filter radiomics vs one pyradiomics `execute` per ROI.

Runs on the real BraTS-space case TCGA-FG-6692 (240x240x155, 1 mm): 4 sequences z-scored inside
the brain (as the preprocessing stage delivers them) x 7 ROIs derived from its fusion segmentation
(peritumoral rings from a distance transform). Prints both wall times, the speed ratio, the largest
relative difference between the two paths and the peak resident memory.

    python benchmarks/radiomics_speed.py [--params config/radiomics/mri_default.yaml]
        [--seqs t1 t1ce t2 flair] [--rois ...]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radiogenomics.features.radiomics import (  # noqa: E402
    extract_per_roi,
    extract_shared,
    make_extractor,
)

CASE = ROOT.parent / "shared" / "data" / "mri" / "tcga_lgg_brats_space" / "TCGA-FG-6692"
SEQS = ("t1", "t1ce", "t2", "flair")


def derive_rois(labels: np.ndarray, brain: np.ndarray, spacing: tuple) -> dict[str, np.ndarray]:
    """The seven canonical ROIs from BraTS labels (1 necrosis, 2 oedema, 4 enhancing), zyx order."""
    whole = labels > 0
    dist = ndimage.distance_transform_edt(~whole, sampling=spacing)
    return {
        "whole_tumor": whole,
        "tumor_core": (labels == 1) | (labels == 4),
        "enhancing": labels == 4,
        "necrosis": labels == 1,
        "edema": labels == 2,
        "peritumoral_near": (dist > 0) & (dist <= 5) & brain,
        "peritumoral_far": (dist > 5) & (dist <= 10) & brain,
    }


def zscore_brain(img: sitk.Image, brain: np.ndarray) -> sitk.Image:
    """Z-score inside the brain (the pipeline's normalised input)."""
    arr = sitk.GetArrayFromImage(img).astype(np.float64)
    vals = arr[brain]
    out = sitk.GetImageFromArray((arr - vals.mean()) / vals.std())
    out.CopyInformation(img)
    return out


def to_mask(arr: np.ndarray, ref: sitk.Image) -> sitk.Image:
    """Boolean zyx array -> label image on `ref`'s grid."""
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.CopyInformation(ref)
    return img


def max_rel_diff(a: dict, b: dict) -> tuple[float, str, int]:
    """Largest relative difference over all shared keys of two {roi: {key: value}} results."""
    worst, where, n = 0.0, "", 0
    for roi in a:
        if set(a[roi]) != set(b[roi]):
            raise AssertionError(f"{roi}: feature keys differ ({len(a[roi])} vs {len(b[roi])})")
        for k, va in a[roi].items():
            vb = b[roi][k]
            n += 1
            if np.isnan(va) and np.isnan(vb):
                continue
            d = abs(va - vb) / max(abs(va), abs(vb), 1e-12)
            if d > worst:
                worst, where = d, f"{roi}/{k}"
    return worst, where, n


def main(argv: list[str] | None = None) -> int:
    """Run both paths and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "config" / "radiomics" / "mri_default.yaml"))
    ap.add_argument("--seqs", nargs="+", default=list(SEQS))
    ap.add_argument("--rois", nargs="+", default=None)
    args = ap.parse_args(argv)

    labels_img = sitk.ReadImage(str(CASE / "segmentations" / "fusion_simple.nii.gz"))
    labels = sitk.GetArrayFromImage(labels_img)
    raw = {s: sitk.ReadImage(str(CASE / f"{s}.nii.gz")) for s in args.seqs}
    brain = np.any([sitk.GetArrayFromImage(i) != 0 for i in raw.values()], axis=0)
    spacing = tuple(reversed(labels_img.GetSpacing()))
    rois = derive_rois(labels, brain, spacing)
    if args.rois:
        rois = {k: rois[k] for k in args.rois}
    images = {s: zscore_brain(img, brain) for s, img in raw.items()}
    extractor = make_extractor(args.params)
    print(
        f"case {CASE.name}: size {labels_img.GetSize()}, {len(images)} sequences x {len(rois)} ROIs"
    )
    print("ROI voxels: " + ", ".join(f"{k}={int(v.sum())}" for k, v in rois.items()))

    t0 = time.perf_counter()
    reference = {}
    for s, img in images.items():
        masks = {r: to_mask(m, img) for r, m in rois.items()}
        reference[s] = extract_per_roi(extractor, img, masks)
    t_ref = time.perf_counter() - t0

    t0 = time.perf_counter()
    shared, first, cache = {}, True, {}
    for s, img in images.items():
        masks = {r: to_mask(m, img) for r, m in rois.items()}
        res, problems = extract_shared(extractor, img, masks, shape=first, cache=cache)
        assert not problems, problems
        shared[s] = res
        first = False
    t_shared = time.perf_counter() - t0

    # Shape is computed once (first sequence) in the shared path: compare it there, and the
    # intensity features for every sequence.
    worst, where, n = 0.0, "", 0
    shape_src = next(iter(shared))
    for s in images:
        ref_s = {
            r: {k: v for k, v in vals.items() if s == shape_src or "_shape" not in k}
            for r, vals in reference[s].items()
        }
        w, wh, c = max_rel_diff(ref_s, shared[s])
        n += c
        if w >= worst:
            worst, where = w, f"{s}/{wh}"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_feat = sum(len(v) for res in shared.values() for v in res.values())
    print(f"features per subject: {n_feat} (compared {n} values)")
    print(f"per-ROI pyradiomics execute: {t_ref:8.1f} s")
    print(f"shared filters:              {t_shared:8.1f} s")
    print(f"speed ratio:                 {t_ref / t_shared:8.2f} x")
    print(f"max relative difference:     {worst:.3g} ({where or 'none'})")
    print(f"peak memory:                 {peak_mb:8.0f} MB")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
