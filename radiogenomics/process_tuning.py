"""Process tuning for every stage: the one place that changes how Python and glibc run our jobs.

Each setting is a measured trade of memory for CPU time; the measurements are in
docs/performance.md. Nothing here changes a result.
"""

from __future__ import annotations

import gc
import os

# glibc keeps freed memory in the heap instead of returning every array over 32 MB to the OS and
# zeroing fresh pages for the next one (ANTs and HD-BET allocate hundreds per session).
JOB_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**32)}
# Snakemake keeps every job's objects for the whole run; default thresholds rescan them constantly.
WORKFLOW_GC_THRESHOLDS = (100_000, 50, 100)


def tune_workflow_process() -> None:
    """Tune the Snakemake process and the environment its jobs inherit (user exports win)."""
    gc.set_threshold(*WORKFLOW_GC_THRESHOLDS)
    for name, value in JOB_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def exclude_from_collector() -> None:
    """Move every object alive now out of the cyclic collector's reach.

    A job's imported modules live until it exits, so scanning them on every full collection and
    once more at exit is wasted work; reference counting still frees everything else.
    """
    gc.freeze()
