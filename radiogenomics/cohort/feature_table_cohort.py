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
from radiogenomics.intake.feature_table import read_feature_table

DEFAULT_SESSION = "baseline"


def rename_feature(source: str, family: str, seq: str, roi: str) -> str:
    """Source column -> `{family}__{seq}__{roi}__{feature}` (double underscores in it collapsed)."""
    return f"{family}__{seq}__{roi}__{source.replace('__', '_')}"


def load_feature_table(entry: Mapping[str, Any], root: str | Path = ".") -> pd.DataFrame:
    """Rows of one feature-table cohort with id columns `cohort, subject, session` + features."""
    name = entry["name"]
    spec = dict(entry.get("feature_table") or {})
    raw = read_feature_table(entry, root)
    include = re.compile(spec.get("include", ".*"))
    exclude = re.compile(spec["exclude"]) if spec.get("exclude") else None
    cols = [
        c
        for c in raw.columns
        if c != "subject"
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
            "subject": raw["subject"],
            "session": spec.get("session", DEFAULT_SESSION),
        }
    )
    feats = raw[cols].astype(float).reset_index(drop=True)
    feats.columns = [rename_feature(c, fam, seq, roi) for c in cols]
    out = pd.concat([out, feats], axis=1)
    if out["subject"].duplicated().any():
        dups = sorted(out.loc[out["subject"].duplicated(), "subject"])[:5]
        raise ConfigError(f"cohort {name}: duplicate subject IDs in {entry['path']}: {dups}")
    return out
