"""Workflow set-up helpers used by the Snakefile (all stages)."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "workflow" / "schemas"


def export_package_path(basedir: str) -> None:
    """Let rule scripts import the package inside per-rule conda envs too (via PYTHONPATH)."""
    current = os.environ.get("PYTHONPATH", "")
    if basedir not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (basedir, current) if p)


# Config keys that name files shipped with the project (not the user's data).
PROJECT_FILE_KEYS = (
    ("cohort", "markers_file"),
    ("features", "radiomics_params"),
    ("report", "review_reference"),
)


def resolve_project_files(config: dict, basedir: str) -> None:
    """Relative paths to shipped files resolve against the run directory first, then the project."""
    for section, key in PROJECT_FILE_KEYS:
        value = config.get(section, {}).get(key)
        if not value or os.path.isabs(value) or os.path.exists(value):
            continue
        candidate = os.path.join(basedir, value)
        if os.path.exists(candidate):
            config[section][key] = candidate


def float_params(cls, cfg: dict | None):
    """A frozen dataclass of float thresholds from a config mapping, ignoring unrelated keys."""
    from dataclasses import fields

    names = {f.name for f in fields(cls)}
    return cls(**{k: float(v) for k, v in (cfg or {}).items() if k in names})


@functools.cache
def _schema(section: str) -> dict:
    return yaml.safe_load((SCHEMAS / f"{section}.schema.yaml").read_text())


def fill_defaults(schema: dict, instance: dict) -> dict:
    """`instance` with every missing property's schema `default`, recursively, in the schema's
    key order (a new dict)."""
    out = {}
    for key, prop in (schema.get("properties") or {}).items():
        if key in instance:
            out[key] = instance[key]
        elif "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        if isinstance(out.get(key), dict) and "properties" in prop:
            out[key] = fill_defaults(prop, out[key])
    return out | {k: v for k, v in instance.items() if k not in out}


def section_defaults(section: str, cfg: dict | None = None) -> dict:
    """A config section completed with its schema's defaults, for callers outside a workflow run
    (tests, benchmarks): `workflow/schemas/{section}.schema.yaml` stays the one source."""
    return fill_defaults(_schema(section), dict(cfg or {}))
