"""MNI152 2009a templates shipped inside the installed nilearn package (demo, atlas, features).

Found by package location: importing `nilearn.datasets` only to build this path costs up to 1.5 s
per job.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MNI152_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def mni152_path(name: str) -> Path:
    """Path of nilearn's 1 mm MNI152 2009a `t1`, `gm` or `wm` map."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nilearn is not installed: it ships the MNI152 templates")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / MNI152_FILE.format(name)
    if not path.is_file():
        raise FileNotFoundError(f"MNI152 template missing from the nilearn install: {path}")
    return path
