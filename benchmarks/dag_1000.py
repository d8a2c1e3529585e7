"""Scale benchmark: dry-run DAG build over 1,000 and 5,000 fake subjects (zero-byte BIDS files).

Usage: .venv/bin/python benchmarks/dag_1000.py [--sizes 1000 5000]
Prints seconds per size and the 5,000/1,000 growth ratio (≈ 5 means linear).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
SUFFIXES = {"anat": ["T1w", "ce-gadolinium_T1w", "T2w", "FLAIR"], "dwi": ["ADC"], "perf": ["rCBV"]}


def make_fake_bids(root: Path, n: int) -> None:
    """Zero-byte files are enough for the DAG: nothing is read at parse time."""
    for i in range(n):
        ses = root / f"sub-F{i:05d}" / "ses-01"
        for datatype, suffixes in SUFFIXES.items():
            (ses / datatype).mkdir(parents=True, exist_ok=True)
            for suffix in suffixes:
                (ses / datatype / f"sub-F{i:05d}_ses-01_{suffix}.nii.gz").touch()


def dry_run_seconds(n: int, workdir: Path) -> float:
    root = workdir / f"bids_{n}"
    make_fake_bids(root, n)
    config = {
        "cohorts": [{"name": "fake", "layout": "bids", "path": str(root), "role": "discovery"}],
        "demo": {"enabled": False},
    }
    cfg = workdir / f"config_{n}.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        str(Path(sys.executable).parent / "snakemake"),
        "-n",
        "--quiet",
        "rules",
        "--configfile",
        str(cfg),
        "--directory",
        str(workdir / f"run_{n}"),
        "--snakefile",
        str(PROJECT / "Snakefile"),
    ]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(
            f"dry run failed for {n} subjects:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args()
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            times[n] = dry_run_seconds(n, Path(tmp))
            print(f"dry-run DAG over {n} subjects: {times[n]:.1f} s", flush=True)
    if 1000 in times and 5000 in times:
        print(f"growth ratio 5000/1000: {times[5000] / times[1000]:.2f} (linear = 5)")


if __name__ == "__main__":
    main()
