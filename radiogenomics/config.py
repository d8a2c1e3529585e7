"""Workflow set-up helpers used by the Snakefile (all stages)."""

from __future__ import annotations

import os


def export_package_path(basedir: str) -> None:
    """Let rule scripts import the package also inside per-rule conda envs (PYTHONPATH is inherited)."""
    current = os.environ.get("PYTHONPATH", "")
    if basedir not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (basedir, current) if p)
