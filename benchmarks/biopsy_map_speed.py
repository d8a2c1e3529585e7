"""Biopsy-stage speed benchmark: one session's marker probability map on a BraTS-sized grid.

    nice -n 10 .venv/bin/python benchmarks/biopsy_map_speed.py [--radius 5] [--tumour-mm 30]

A 240 x 240 x 155 grid at 1 mm with a spherical tumour and three images (t1ce, adc, rcbv); a
LASSO model on mean/std sphere features is fitted to random samples, then mapped with stride 1
and 2. Prints wall time per map, the number of sphere centres and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.biopsy.coords import SessionGeometry
from radiogenomics.biopsy.features import SessionImages, SphereParams
from radiogenomics.biopsy.model import BiopsyModel, make_pipeline
from radiogenomics.biopsy.probmap import probability_map

SHAPE = (240, 240, 155)


def session(tumour_mm: float, rng: np.random.Generator) -> SessionImages:
    """An in-memory session: brain ellipsoid, spherical tumour, three noisy images."""
    affine = np.eye(4)
    ijk = np.indices(SHAPE, dtype=np.float32)
    c = (np.array(SHAPE, np.float32) - 1) / 2
    rel = sum(((ijk[i] - c[i]) / r) ** 2 for i, r in enumerate((70, 85, 65)))
    brain = rel <= 1
    tumour = sum((ijk[i] - c[i] - 20) ** 2 for i in range(3)) <= tumour_mm**2
    images = {
        name: (base + sd * rng.standard_normal(SHAPE, dtype=np.float32)) * brain
        for name, base, sd in (("t1ce", 1.0, 0.1), ("adc", 800.0, 80.0), ("rcbv", 1.5, 0.5))
    }
    geo = SessionGeometry(Path("."), affine, SHAPE, "t1ce")
    ref = nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), affine)
    return SessionImages(images, brain, tumour, ref, geo, {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--radius", type=float, default=5.0)
    ap.add_argument("--tumour-mm", type=float, default=30.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ses = session(args.tumour_mm, rng)
    features = [f"{s}__{t}" for s in ("adc", "rcbv", "t1ce") for t in ("mean", "std")]
    X = pd.DataFrame(rng.normal(size=(80, len(features))), columns=features)
    y = (X["rcbv__mean"] + 0.5 * rng.normal(size=80) > 0).astype(int).to_numpy()
    pipe = make_pipeline("lasso", seed=0).fit(X, y)
    model = BiopsyModel(pipe, features, "egfr_amplification", "amplified",
                        SphereParams(radius_mm=args.radius))  # fmt: skip
    print(f"grid {SHAPE} at 1 mm, tumour radius {args.tumour_mm} mm "
          f"({int(ses.tumour.sum())} voxels), sphere radius {args.radius} mm")  # fmt: skip
    for stride in (1, 2):
        t0, c0 = time.perf_counter(), time.process_time()
        _, summary = probability_map(model, ses, stride=stride)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"stride {stride}: {wall:.2f} s wall, {cpu:.2f} s CPU, "
              f"{summary['n_centres']} centres, {summary['n_undefined']} undefined")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
