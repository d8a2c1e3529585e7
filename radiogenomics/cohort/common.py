"""Shared by the cohort-level analyses (markers, unsupervised, survival, validation): the cohort
tables as they are read, feature selection by name, and the modelling table of one marker."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from radiogenomics.cohort.models import CLINICAL_PREFIX
from radiogenomics.cohort.robustness import read_dropped
from radiogenomics.errors import ConfigError
from radiogenomics.io import read_tsv
from radiogenomics.labels import marker_binary

ID_COLUMNS = ["cohort", "subject", "session"]


def read_inputs(features: str, labels: str, dropped: str | None):
    """features.tsv, labels.tsv and the dropped-feature set, with IDs read as strings."""
    ids = {"cohort": str, "subject": str, "session": str}
    return read_tsv(features, dtype=ids), read_tsv(labels, dtype=ids), read_dropped(dropped)


def select_features(columns: list[str], patterns: tuple[str, ...], dropped: set[str]) -> list[str]:
    """Feature columns matching any regex, minus those dropped by the robustness filter."""
    regs = [re.compile(p) for p in patterns]
    feats = [c for c in columns if c.count("__") >= 2 and not c.startswith("prov__")]
    return [c for c in feats if c not in dropped and any(r.search(c) for r in regs)]


def usable_features(
    table: pd.DataFrame, patterns: tuple[str, ...], dropped: set[str]
) -> tuple[list[str], str]:
    """Features of a strategy that `table` can feed, and what was skipped, in words.

    Skipped: a regex that matches no feature column (the cohort lacks that sequence, map or
    family), features the robustness filter dropped, and features missing in every row."""
    columns = list(table.columns)
    matched = select_features(columns, patterns, set())
    kept = [c for c in matched if c not in dropped]
    has_value = table[kept].notna().any(axis=0).to_numpy() if kept else np.zeros(0, bool)
    present = [c for c, ok in zip(kept, has_value, strict=True) if ok]
    notes = [
        f"pattern {p!r} matches no feature"
        for p in patterns
        if not select_features(columns, (p,), set())
    ]
    if len(kept) < len(matched):
        notes.append(f"{len(matched) - len(kept)} dropped by the robustness filter")
    if len(present) < len(kept):
        missing = [c for c, ok in zip(kept, has_value, strict=True) if not ok]
        notes.append(f"{len(missing)} missing in every subject (e.g. {missing[0]})")
    return present, "skipped: " + "; ".join(notes) if notes else ""


def clinical_columns(labels: pd.DataFrame, covariates: tuple[str, ...]) -> pd.DataFrame:
    """Numeric clinical covariates (`sex` -> 1 for M) named `clinical__{name}`."""
    out = pd.DataFrame(index=labels.index)
    for cov in covariates:
        if cov not in labels.columns:
            raise ConfigError(f"clinical covariate {cov!r} not in labels")
        col = labels[cov]
        out[f"{CLINICAL_PREFIX}{cov}"] = (
            col.map({"M": 1.0, "F": 0.0}) if cov == "sex" else pd.to_numeric(col, errors="coerce")
        )
    return out


def baseline_rows(features: pd.DataFrame) -> pd.DataFrame:
    """First session (sorted) of each subject: markers are properties of the patient."""
    srt = features.sort_values(ID_COLUMNS, kind="stable")
    # duplicated() on the two id columns only: on the whole frame pandas walks every column.
    repeat = srt[["cohort", "subject"]].duplicated(keep="first").to_numpy()
    return srt[~repeat].reset_index(drop=True)


def modelling_table(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    marker: str,
    role: str = "discovery",
    within: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Rows of one role with a known value of `marker`, with labels joined and `y` in 0/1.

    `within` (e.g. {"idh": "mutant"}, or {"who_cns5_code": [...]}) keeps the rows of one
    subgroup first; `attrs["subgroup"]` holds `within` (text), `n_discovery` (rows with features
    and labels) and `n_within` (rows in the subgroup), before rows with an unknown marker go.
    """
    from radiogenomics.cohort.who_cns5 import integrated_types, select_subgroup

    rows = baseline_rows(features[features["role"] == role])
    lab = labels.drop(columns=[c for c in ("site", "scanner") if c in labels.columns])
    df = rows.merge(lab, on=["cohort", "subject"], how="inner", suffixes=("", "_label"))
    sub: dict[str, Any] = {"within": "", "n_discovery": len(df), "n_within": len(df)}
    if within:
        if "who_cns5_code" in within and "who_cns5_code" not in df.columns:
            types = integrated_types(rows, lab)
            df = df.merge(types[["cohort", "subject", "who_cns5_code"]], on=["cohort", "subject"])
        df, summary = select_subgroup(df, dict(within))
        sub.update(within=summary["within"], n_within=summary["n_selected"])
    if marker not in df.columns:
        df["y"] = np.nan
    else:
        df["y"] = marker_binary(df[marker], marker)
    out = df[df["y"].notna()].reset_index(drop=True)
    out.attrs["subgroup"] = sub
    return out
