"""Feature-table cohorts (cohort stage): precomputed feature CSVs joined like pipeline features.

A cohort with `layout: feature-table` brings no images: `path` is a CSV of precomputed features
(one row per patient), `feature_table` says how to read it, and `labels` is its labels table.
IDs go through the same `id_transform` + `safe_id` as the intake's labels so the tables join.
Columns are selected by regex and renamed to the `{family}__{seq}__{roi}__{feature}` contract so
the same marker strategies can select them.
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

DEFAULT_SESSION = "baseline"


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


def rename_feature(source: str, family: str, seq: str, roi: str) -> str:
    """Source column -> `{family}__{seq}__{roi}__{feature}` (double underscores in it collapsed)."""
    return f"{family}__{seq}__{roi}__{source.replace('__', '_')}"


def load_feature_table(entry: Mapping[str, Any], root: str | Path = ".") -> pd.DataFrame:
    """Rows of one feature-table cohort with id columns `cohort, subject, session` + features."""
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
    include = re.compile(spec.get("include", ".*"))
    exclude = re.compile(spec["exclude"]) if spec.get("exclude") else None
    cols = [
        c
        for c in raw.columns
        if c != id_col
        and include.search(c)
        and not (exclude and exclude.search(c))
        and pd.api.types.is_numeric_dtype(raw[c])
    ]
    if not cols:
        raise ConfigError(f"cohort {name}: no numeric feature columns match {include.pattern!r}")
    fam, seq, roi = spec.get("family", "radiomics"), spec.get("seq", "all"), spec.get("roi", "all")
    out = pd.DataFrame(
        {
            "cohort": name,
            "subject": [safe_id(transform_id(v, spec.get("id_transform"))) for v in raw[id_col]],
            "session": spec.get("session", DEFAULT_SESSION),
        }
    )
    feats = raw[cols].astype(float).reset_index(drop=True)
    feats.columns = [rename_feature(c, fam, seq, roi) for c in cols]
    out = pd.concat([out, feats], axis=1)
    if out["subject"].duplicated().any():
        dups = sorted(out.loc[out["subject"].duplicated(), "subject"])[:5]
        raise ConfigError(f"cohort {name}: duplicate subject IDs in {path}: {dups}")
    return out
