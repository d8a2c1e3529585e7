"""Physiologic-map speed benchmark: one raw session (DSC 128x128x24x60 with motion correction,
single echo; DWI 128x128x24 at b = 0, 500, 1000 with 3 directions) through the session entry
points, on one thread. Target: <= 30 CPU-s and <= 2 GB peak RSS.

    nice -n 10 .venv/bin/python benchmarks/maps_speed.py

The inputs are simulated (radiogenomics.demo.acquisitions) in a child process, so the printed
peak RSS is that of the map computation alone.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/ITK start their pools.
for _var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

SHAPE = (128, 128, 24)
VOXEL_MM = (1.8, 1.8, 5.0)


def simulate(out: str) -> None:
    """Write the simulated session's files (child process: its memory is not counted)."""
    import nibabel as nib
    import numpy as np

    from radiogenomics.demo import acquisitions as acq

    b = acq.synthetic_brain(shape=SHAPE, voxel_mm=VOXEL_MM, seed=0)
    d = Path(out)
    sim = acq.simulate_dsc(b["s0"], b["rcbv"], b["affine"], k2=b["k2"], artery=b["artery"],
                           seed=1)  # fmt: skip
    nib.save(nib.Nifti1Image(sim["series"], b["affine"]), str(d / "dsc.nii.gz"))
    dwi = acq.simulate_dwi(b["s0"] * b["brain"], b["adc"], seed=2)
    nib.save(nib.Nifti1Image(dwi["series"], b["affine"]), str(d / "dwi.nii.gz"))
    np.savetxt(d / "dwi.bval", dwi["bvals"][None], fmt="%g")
    np.savetxt(d / "dwi.bvec", dwi["bvecs"].T, fmt="%.6f")
    for name in ("brain", "wm", "lesion"):
        nib.save(nib.Nifti1Image(b[name].astype(np.uint8), b["affine"]), str(d / f"{name}.nii.gz"))


def main() -> None:
    """Simulate, then time the DSC and DWI sessions."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from radiogenomics.physiology.session import dsc_session, dwi_session

    with tempfile.TemporaryDirectory() as tmp:
        child = mp.get_context("spawn").Process(target=simulate, args=(tmp,))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("simulation failed")
        d = Path(tmp)
        t0, c0 = time.perf_counter(), time.process_time()
        dsc_session(d / "dsc.nii.gz", {"RepetitionTime": 1.5, "EchoTime": 0.03}, d / "maps",
                    brain_mask=d / "brain.nii.gz", wm_mask=d / "wm.nii.gz",
                    exclude_mask=d / "lesion.nii.gz", seed=0)  # fmt: skip
        c1, t1 = time.process_time(), time.perf_counter()
        dwi_session(d / "dwi.nii.gz", d / "dwi.bval", d / "dwi.bvec", d / "maps",
                    mask=d / "brain.nii.gz")  # fmt: skip
        c2, t2 = time.process_time(), time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"DSC {SHAPE + (60,)} with motion correction: {c1 - c0:.1f} CPU-s ({t1 - t0:.1f} s wall)")
    print(f"DWI {SHAPE} x 7 volumes: {c2 - c1:.1f} CPU-s ({t2 - t1:.1f} s wall)")
    print(f"session total: {c2 - c0:.1f} CPU-s; peak RSS {peak:.0f} MB (targets 30 CPU-s, 2048 MB)")


if __name__ == "__main__":
    main()
