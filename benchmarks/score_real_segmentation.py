"""Score `segmentation: automated` on the real labelled cases through the imaging chain.

Cases: the four BraTS 2018 training cases (expert labels) and the two TCGA-LGG cases in BraTS
space (BraTS-Toolkit fusion labels) in ../shared/data/mri. Each runs as a skull-stripped cohort
would (radiogenomics.segmentation.realdata.run_case: intake RAS, N4, co-registration to t1ce on
the `resample_mm` grid, derived brain mask, z-score, automated segmentation) for every variant
asked, and the whole-tumour / tumour-core / enhancing Dice against the labels (brought onto the
result grid) is printed per case with the seconds each case took.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/score_real_segmentation.py
           [--variants original,flair_t1ce] [--resample-mm 1] [--cases NAME,...] [--out x.tsv]
Targets (issue 20): WT >= 0.85, TC >= 0.65, ET >= 0.65 for 4-sequence and FLAIR+T1c inputs.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import nibabel as nib
import pandas as pd

from radiogenomics.segmentation.realdata import (
    SEQUENCES,
    VARIANTS,
    make_variant,
    region_dice,
    run_case,
    truth_on_grid,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri"


def real_cases(root: Path = DATA) -> dict[str, tuple[dict[str, Path], Path]]:
    """Case name -> (sequence files, label file) for the labelled BraTS-space cases."""
    cases = {}
    for d in sorted((root / "brats2018_sample").glob("Brats18_*")):
        files = {s: d / f"{d.name}_{s}.nii.gz" for s in SEQUENCES}
        cases[d.name] = (files, d / f"{d.name}_seg.nii.gz")
    for d in sorted((root / "tcga_lgg_brats_space").glob("TCGA-*")):
        files = {s: d / f"{s}.nii.gz" for s in SEQUENCES}
        cases[d.name] = (files, d / "segmentations" / "fusion_simple.nii.gz")
    return cases


def score(name: str, variant: str, resample_mm: float, seed: int = 0) -> dict:
    """One case, one variant: Dice per region, core method, seconds."""
    files, label_file = real_cases()[name]
    images = make_variant({s: nib.load(p) for s, p in files.items()}, variant)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"realseg_{name}_") as tmp:
        res = run_case(images, tmp, resample_mm=resample_mm, seed=seed)
    seconds = time.perf_counter() - t0
    truth = truth_on_grid(nib.load(label_file), res["affine"], res["labels"].shape)
    d = region_dice(res["labels"], truth)
    return {
        "case": name,
        "variant": variant,
        **{k: round(v, 4) for k, v in d.items()},
        "truth_et_ml": float((truth == 4).sum() * resample_mm**3 / 1000),
        "pred_et_ml": float((res["labels"] == 3).sum() * resample_mm**3 / 1000),
        "inputs": ",".join(res["meta"].get("inputs", [])),
        "core_method": res["meta"].get("core_method", ""),
        "intensities": ",".join(sorted({v["intensities"] for v in res["n4"].values()})),
        "brain_ml": round(res["brain_ml"], 1),
        "seconds": round(seconds, 1),
        "segment_seconds": round(res["seconds"]["segment"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="original,flair_t1ce")
    ap.add_argument("--resample-mm", type=float, default=1.0)
    ap.add_argument("--cases", default="")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    variants = [v for v in args.variants.split(",") if v]
    bad = sorted(set(variants) - set(VARIANTS))
    if bad:
        raise SystemExit(f"unknown variants {bad}; choose from {VARIANTS}")
    names = [c for c in args.cases.split(",") if c] or list(real_cases())
    rows = []
    for variant in variants:
        for name in names:
            rows.append(score(name, variant, args.resample_mm))
            print(pd.DataFrame([rows[-1]]).to_string(index=False, header=len(rows) == 1),
                  flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    print()
    print(table.groupby("variant")[["wt", "tc", "et", "seconds"]].mean().round(3).to_string())
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
