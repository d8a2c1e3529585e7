"""Test helpers (all stages): workflow configs built on the project's demo config.

A `--configfile` replaces the demo config instead of extending it, so a test run of the demo
starts from `config/config.yaml` and changes what it needs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]


def merged(base: dict, changes: dict) -> dict:
    """`base` with `changes` merged in, nested mappings key by key (a new dict)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def demo_config(**changes) -> dict:
    """The project's demo config (config/config.yaml) with `changes` merged in by section."""
    base = yaml.safe_load((PROJECT / "config" / "config.yaml").read_text())
    return merged(base, changes)
