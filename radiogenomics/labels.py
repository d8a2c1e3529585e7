"""Canonical labels (intake and cohort stages): vocabulary, mapping from source tables, validation.

Every cohort's molecular/clinical table is mapped onto one vocabulary (docs/developer_contract.md)
so that the cohort stage never sees source-specific spellings. Problems are reported with the row
number as it appears in the file (header = row 1) and the column, so a curator can fix the sheet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radiogenomics.errors import ConfigError, SubjectError

# Binary molecular markers: canonical column -> (positive class, negative class).
MARKERS: dict[str, tuple[str, str]] = {
    "idh": ("mutant", "wildtype"),
    "codeletion_1p19q": ("codeleted", "intact"),
    "mgmt": ("methylated", "unmethylated"),
    # EGFR amplification and the EGFRvIII deletion variant are different markers (the review
    # discusses them separately); +7/-10 is one of WHO CNS5's molecular glioblastoma criteria.
    "egfr_amplification": ("amplified", "not_amplified"),
    "egfrviii": ("positive", "negative"),
    "chr7_gain_chr10_loss": ("present", "absent"),
    "cdkn2ab": ("deleted", "intact"),
    "h3k27": ("altered", "wildtype"),
    "tert": ("mutant", "wildtype"),
}
# Columns still read but not kept: the old merged `egfr` ("amplification or EGFRvIII"), split by
# `split_legacy_egfr` when a table is coerced.
LEGACY: dict[str, tuple[str, str]] = {"egfr": ("amplified", "not_amplified")}
CATEGORICAL: dict[str, tuple[str, ...]] = {**MARKERS, **LEGACY, "sex": ("M", "F")}
NUMERIC: tuple[str, ...] = ("age", "os_days", "pfs_days")
BINARY_INT: tuple[str, ...] = ("os_event", "pfs_event", "progression")
STRINGS: tuple[str, ...] = ("site", "scanner")
KEY = "subject"
CANONICAL_COLUMNS: tuple[str, ...] = (KEY, *CATEGORICAL, *NUMERIC, *BINARY_INT, *STRINGS)
FIRST_DATA_ROW = 2  # header is row 1 in the file
# Spellings of "unknown" seen in public sheets; blank is the canonical unknown.
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null", "unknown", "-"})


@dataclass(frozen=True)
class LabelIssue:
    """One problem in a labels table, located by file row (header = 1) and column."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.message}"


def marker_binary(values: pd.Series, marker: str) -> pd.Series:
    """Canonical marker values -> 1 (positive class), 0 (negative), NaN (unknown)."""
    pos, neg = MARKERS[marker]
    return values.map({pos: 1.0, neg: 0.0}).astype(float)


def _read_table(path: Path) -> pd.DataFrame:
    """Read CSV/TSV as strings; empty files raise ConfigError naming the file."""
    if not path.exists():
        raise ConfigError(f"labels file not found: {path}")
    if path.stat().st_size == 0 or not path.read_text(errors="replace").strip():
        raise ConfigError(f"labels file is empty: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab", ".txt") else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"labels file is empty: {path}") from exc
    if df.empty:
        raise ConfigError(f"labels file has a header but no rows: {path}")
    return df


def transform_id(value: str, transform: Mapping[str, str] | None) -> str:
    """Apply the spec's `id_transform` ({regex, format}) to one ID; unmatched IDs pass as-is."""
    value = str(value).strip()
    if not transform:
        return value
    regex = transform.get("regex")
    fmt = transform.get("format")
    if not regex:
        return fmt.format(value) if fmt else value
    match = re.fullmatch(regex, value)
    if match is None:
        # Left unchanged so validation reports it as an unknown subject with its row.
        return value
    if not fmt:
        return match.group(1) if match.groups() else match.group(0)
    return fmt.format(*match.groups(), **match.groupdict())


def map_value(value: Any, mapping: Mapping[str, Any] | None) -> Any:
    """Map one source cell: exact key, then keys as case-insensitive regexes; else unchanged."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    text = str(value).strip()
    if text.lower() in NULL_TOKENS:
        return np.nan
    if mapping:
        if text in mapping:
            out = mapping[text]
        else:
            out = text
            for pattern, target in mapping.items():
                if re.fullmatch(str(pattern), text, flags=re.IGNORECASE):
                    out = target
                    break
        if out is None or (isinstance(out, str) and out.strip() == ""):
            return np.nan
        return str(out) if not isinstance(out, str) else out
    return text


def load_labels(path: str | Path, spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV labels table and map it to canonical columns; index = file row number."""
    path = Path(path)
    spec = dict(spec or {})
    raw = _read_table(path)
    id_column = spec.get("id_column", KEY)
    if id_column not in raw.columns:
        raise ConfigError(
            f"labels file {path}: id column {id_column!r} not found (has {list(raw.columns)})"
        )
    columns: dict[str, str] = dict(spec.get("columns") or {})
    if not columns:
        # Already canonical: keep every canonical column the file has.
        columns = {c: c for c in CANONICAL_COLUMNS if c in raw.columns and c != KEY}
    missing = {canon: src for canon, src in columns.items() if src not in raw.columns}
    if missing:
        raise ConfigError(f"labels file {path}: source columns not found: {missing}")
    values: dict[str, dict] = {k: dict(v or {}) for k, v in (spec.get("values") or {}).items()}
    out = pd.DataFrame(index=pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(raw), name="row"))
    out[KEY] = [transform_id(v, spec.get("id_transform")) for v in raw[id_column]]
    for canon, src in columns.items():
        out[canon] = [map_value(v, values.get(canon)) for v in raw[src]]
    for canon in (*NUMERIC, *BINARY_INT):
        if canon in out.columns:
            out[canon] = _soft_numeric(out[canon])
    return out


def _soft_numeric(col: pd.Series) -> pd.Series:
    """Float where every value parses; otherwise keep text so validation can report it."""
    converted = pd.to_numeric(col, errors="coerce")
    bad = converted.isna() & col.notna()
    return col if bad.any() else converted.astype(float)


def _text(value: Any) -> str:
    """Cell as the curator wrote it (2.0 read as a number shows as '2')."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _row_numbers(df: pd.DataFrame) -> list[int]:
    """File row numbers: the index when load_labels made it, else position + 2."""
    if df.index.name == "row":
        return [int(i) for i in df.index]
    return list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(df)))


def validate_labels(
    df: pd.DataFrame, known_subjects: Iterable[str] | None = None
) -> list[LabelIssue]:
    """Every problem in a canonical labels table: unknown/duplicate/missing IDs, bad values."""
    issues: list[LabelIssue] = []
    rows = _row_numbers(df)
    if KEY not in df.columns:
        return [LabelIssue(1, KEY, "", "key column 'subject' missing")]
    known = set(map(str, known_subjects)) if known_subjects is not None else None
    seen: dict[str, int] = {}
    for row, subj in zip(rows, df[KEY], strict=True):
        if subj is None or (isinstance(subj, float) and np.isnan(subj)) or str(subj).strip() == "":
            issues.append(LabelIssue(row, KEY, "", "missing subject ID"))
            continue
        subj = str(subj)
        if subj in seen:
            issues.append(
                LabelIssue(row, KEY, subj, f"duplicate subject ID (first at row {seen[subj]})")
            )
        else:
            seen[subj] = row
        if known is not None and subj not in known:
            issues.append(LabelIssue(row, KEY, subj, "unknown subject (no images/features for it)"))
    for col in df.columns:
        if col in CATEGORICAL:
            allowed = CATEGORICAL[col]
            for row, v in zip(rows, df[col], strict=True):
                if pd.notna(v) and v not in allowed:
                    issues.append(
                        LabelIssue(row, col, str(v), f"not in vocabulary {list(allowed)}")
                    )
        elif col in NUMERIC or col in BINARY_INT:
            for row, v in zip(rows, df[col], strict=True):
                if pd.isna(v):
                    continue
                num = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
                if pd.isna(num):
                    issues.append(LabelIssue(row, col, _text(v), "not a number"))
                elif col in BINARY_INT and num not in (0, 1):
                    issues.append(LabelIssue(row, col, _text(v), "must be 0 or 1"))
                elif col in NUMERIC and num < 0:
                    issues.append(LabelIssue(row, col, _text(v), "must be >= 0"))
    return issues


def _known(value: Any) -> bool:
    return not (value is None or (isinstance(value, float) and np.isnan(value)) or value == "")


def split_legacy_egfr(df: pd.DataFrame) -> pd.DataFrame:
    """Replace an old merged `egfr` column by `egfr_amplification` / `egfrviii` (where blank).

    `egfr` meant "amplification or EGFRvIII": `not_amplified` therefore says neither
    (egfr_amplification=not_amplified, egfrviii=negative); `amplified` says amplification only
    when EGFRvIII is known negative, otherwise it may be EGFRvIII alone and egfr_amplification
    stays unknown (the rule of `cohort.who_cns5.egfr_amplification_status`). Values already in
    the split columns win. The `egfr` column is dropped.
    """
    if "egfr" not in df.columns:
        return df
    out = df.copy()
    for col in ("egfr_amplification", "egfrviii"):
        if col not in out.columns:
            out[col] = np.nan
        out[col] = out[col].astype(object)
    for i, merged in out["egfr"].items():
        amp, viii = out.at[i, "egfr_amplification"], out.at[i, "egfrviii"]
        if merged == "not_amplified":
            if not _known(amp):
                out.at[i, "egfr_amplification"] = "not_amplified"
            if not _known(viii):
                out.at[i, "egfrviii"] = "negative"
        elif merged == "amplified" and not _known(amp) and viii == "negative":
            out.at[i, "egfr_amplification"] = "amplified"
    return out.drop(columns=["egfr"])


def coerce_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Typed copy of a valid labels table: floats for numeric columns, strings elsewhere; an old
    merged `egfr` column is split (`split_legacy_egfr`)."""
    out = split_legacy_egfr(df.copy())
    out[KEY] = out[KEY].astype(str)
    for col in out.columns:
        if col in NUMERIC or col in BINARY_INT:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def check_labels(
    df: pd.DataFrame, known_subjects: Iterable[str] | None = None, source: str | Path = ""
) -> pd.DataFrame:
    """Validate and return the typed table, or raise ConfigError listing every issue."""
    issues = validate_labels(df, known_subjects)
    if issues:
        where = f" in {source}" if source else ""
        lines = "\n  ".join(str(i) for i in issues)
        raise ConfigError(f"{len(issues)} problem(s) in labels{where}:\n  {lines}")
    return coerce_labels(df)


def labels_without_images(labels: pd.DataFrame, subjects: Iterable[str]) -> list[str]:
    """Subjects that have labels but are not in `subjects` (listed, never silently dropped)."""
    have = set(map(str, subjects))
    return sorted(s for s in labels[KEY].astype(str) if s not in have)


# Tumour label images (intake checks them, segmentation maps them): raw value -> pipeline value
# (1 necrosis/non-enhancing core, 2 oedema, 3 enhancing) for each supported convention.
CONVENTIONS: dict[str, dict[int, int]] = {
    "brats": {0: 0, 1: 1, 2: 2, 4: 3},
    # BraTS 2012/2013: 1 necrosis, 2 oedema, 3 non-enhancing tumour, 4 enhancing.
    "brats2013": {0: 0, 1: 1, 2: 2, 3: 1, 4: 3},
    "pipeline": {0: 0, 1: 1, 2: 2, 3: 3},
}


def label_values(data: np.ndarray) -> list[int]:
    """Sorted distinct values of a label array (non-integers raise)."""
    vals = np.unique(np.asarray(data))
    if not np.all(np.isfinite(vals)) or not np.allclose(vals, np.round(vals)):
        raise ValueError(f"non-integer label values {vals[:10].tolist()}")
    return [int(v) for v in np.round(vals)]


def map_label_convention(
    data: np.ndarray,
    convention: str,
    *,
    file: str | Path | None = None,
    allowed: Iterable[int] | None = None,
    stage: str = "",
) -> np.ndarray:
    """Map raw label values to 0/1/2/3 (uint8); unexpected values raise SubjectError naming them."""
    if convention not in CONVENTIONS:
        raise SubjectError(
            f"unknown label convention '{convention}' (expected one of {sorted(CONVENTIONS)})",
            stage=stage,
            file=file,
        )
    mapping = CONVENTIONS[convention]
    ok = set(mapping) if allowed is None else set(mapping) & {int(v) for v in allowed}
    try:
        found = label_values(data)
    except ValueError as exc:
        raise SubjectError(f"provided labels: {exc}", stage=stage, file=file) from exc
    bad = [v for v in found if v not in ok]
    if bad:
        raise SubjectError(
            f"provided labels contain values {bad} not allowed for convention '{convention}' "
            f"(allowed {sorted(ok)}; found {found})",
            stage=stage,
            file=file,
        )
    lut = np.zeros(max(mapping) + 1, dtype=np.uint8)
    for raw, new in mapping.items():
        lut[raw] = new
    return lut[np.round(np.asarray(data)).astype(np.int64)]
