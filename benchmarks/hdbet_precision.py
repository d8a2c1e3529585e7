"""Skull-stripping precision check (preprocess stage): HD-BET in bfloat16 against float32 on a
real whole head (TCGA-FG-6692 T1 in ../shared/data/mri/tcga_lgg_raw_wholehead).

`skullstrip.hdbet_precision("auto")` picks bfloat16 on CPUs with native bfloat16; this prints
both masks' volumes, their Dice (must be >= 0.995) and the seconds each took, and exits non-zero
when the Dice is lower. It lives here and not in the test suite because float32 on such a CPU
takes several minutes for one head.

    PYTHONPATH=. .venv/bin/python benchmarks/hdbet_precision.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.imaging import skullstrip
from radiogenomics.imaging.common import dice, set_threads
from radiogenomics.imaging.reorient import to_ras

HEAD = Path(__file__).resolve().parents[2] / "shared/data/mri/tcga_lgg_raw_wholehead/TCGA-FG-6692"
MIN_DICE = 0.995


def main() -> int:
    set_threads(2)
    img = to_ras(nib.load(str(HEAD / "t1.nii.gz")))
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000
    masks = {}
    for precision in ("bfloat16", "float32"):
        start = time.perf_counter()
        masks[precision] = skullstrip.hdbet_mask(img, precision=precision)
        seconds = time.perf_counter() - start
        print(f"{precision}: {masks[precision].sum() * voxel_ml:.0f} ml in {seconds:.1f} s")
    agreement = dice(masks["float32"], masks["bfloat16"])
    print(f"Dice bfloat16 vs float32: {agreement:.4f} (auto picks {skullstrip.hdbet_precision()})")
    return 0 if agreement >= MIN_DICE else 1


if __name__ == "__main__":
    sys.exit(main())
