"""Intake stage: which subjects a feature-table cohort holds (it brings features, no images).

A cohort with `layout: feature-table` is a CSV of precomputed features, one row per patient; its
IDs go through the same `id_transform` + `safe_id` as the labels tables so the two join.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from radiogenomics.errors import ConfigError
from radiogenomics.intake.discover import safe_id
from radiogenomics.labels import transform_id


def id_number(value: str) -> int | None:
    """The integer made of the last run of digits in an ID (UCSF-PDGM-004 -> 4)."""
    found = re.findall(r"\d+", str(value))
    return int(found[-1]) if found else None


def select_rows(ids: pd.Series, id_range: Mapping[str, int] | None) -> pd.Series:
    """Boolean mask of IDs whose number lies in [min, max] (a split of one table into cohorts)."""
    if not id_range:
        return pd.Series(True, index=ids.index)
    lo, hi = id_range.get("min", float("-inf")), id_range.get("max", float("inf"))
    nums = ids.map(id_number)
    return nums.notna() & (nums >= lo) & (nums <= hi)


def read_feature_table(entry: Mapping[str, Any], root: str | Path = ".") -> pd.DataFrame:
    """The cohort's rows (its `id_range`) with a `subject` column of canonical IDs first."""
    name = entry["name"]
    spec = dict(entry.get("feature_table") or {})
    path = Path(entry["path"])
    path = path if path.is_absolute() else Path(root) / path
    if not path.exists():
        raise ConfigError(f"cohort {name}: features file not found: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    raw = pd.read_csv(path, sep=sep)
    id_col = spec.get("id_column", "subject")
    if id_col not in raw.columns:
        raise ConfigError(f"cohort {name}: id column {id_col!r} not in {path}")
    raw = raw[select_rows(raw[id_col].astype(str), spec.get("id_range")).to_numpy()]
    subjects = [safe_id(transform_id(v, spec.get("id_transform"))) for v in raw[id_col]]
    return pd.concat(
        [pd.DataFrame({"subject": subjects}), raw.drop(columns=[id_col]).reset_index(drop=True)],
        axis=1,
    )
