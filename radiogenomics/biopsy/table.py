"""Biopsy stage: read and validate a cohort's biopsy table (one row per tissue sample).

Columns: `subject`, `session`, `sample_id`, `x`, `y`, `z`, `space`, optional `sequence`, then
per-sample marker values (e.g. `egfr_amplification`: amplified/not_amplified; blank = not
tested). `space` is `scanner_ras` (world millimetres, RAS, of the named `sequence`, or of the
session's reference sequence when `sequence` is blank) or `voxel` (0-based voxel indices i, j, k
of intake's `anat/{sequence}.nii.gz`, which then must be named). Other columns pass through.
Problems are reported with the file row (header = row 1) and the column, all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.errors import ConfigError

ID_COLUMNS = ("subject", "session", "sample_id")
COORDS = ("x", "y", "z")
REQUIRED = (*ID_COLUMNS, *COORDS, "space")
SPACES = ("scanner_ras", "voxel")
# Per-sample marker vocabularies (positive class first), as in the canonical labels.
SAMPLE_MARKERS: dict[str, tuple[str, str]] = {
    "egfr_amplification": ("amplified", "not_amplified"),
    "egfrviii": ("positive", "negative"),
    "egfr": ("amplified", "not_amplified"),
    "idh": ("mutant", "wildtype"),
    "mgmt": ("methylated", "unmethylated"),
    "cdkn2ab": ("deleted", "intact"),
    "h3k27": ("altered", "wildtype"),
    "tert": ("mutant", "wildtype"),
    "codeletion_1p19q": ("codeleted", "intact"),
}
FIRST_DATA_ROW = 2
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null", "unknown", "-"})
SEQUENCE_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class TableIssue:
    """One problem, located by file row (header = 1) and column."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.message}"


def _blank(value) -> bool:
    """True for NaN/None and the null spellings."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    return str(value).strip().lower() in NULL_TOKENS


def _strip_entity(value: str, prefix: str) -> str:
    """'sub-01' -> '01' (the pipeline keys subjects and sessions without the BIDS prefix)."""
    value = str(value).strip()
    return value[len(prefix) :] if value.startswith(prefix) else value


def _read(path: Path) -> pd.DataFrame:
    """Raw table as strings (TSV by suffix .tsv/.tab/.txt, else CSV)."""
    if not path.is_file():
        raise ConfigError(f"biopsy table not found: {path}")
    if not path.read_text(errors="replace").strip():
        raise ConfigError(f"biopsy table is empty: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab", ".txt") else ","
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    if df.empty:
        raise ConfigError(f"biopsy table {path} has a header but no rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def validate_biopsy_table(
    raw: pd.DataFrame,
    markers: Mapping[str, tuple[str, str]] = SAMPLE_MARKERS,
    known_sessions: Iterable[tuple[str, str]] | None = None,
) -> tuple[pd.DataFrame, list[TableIssue]]:
    """Typed table (index = file row) and every problem found in a raw string table."""
    issues: list[TableIssue] = []
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        return raw, [TableIssue(1, c, "", "required column missing") for c in missing]
    rows = range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(raw))
    out = pd.DataFrame(index=pd.Index(rows, name="row"))
    out["subject"] = [_strip_entity(v, "sub-") for v in raw["subject"]]
    out["session"] = [_strip_entity(v, "ses-") for v in raw["session"]]
    out["sample_id"] = [str(v).strip() for v in raw["sample_id"]]
    for col in ID_COLUMNS:
        for row, v in zip(rows, out[col], strict=True):
            if _blank(v):
                issues.append(TableIssue(row, col, v, "must not be blank"))
    seen: dict[tuple, int] = {}
    for row, key in zip(rows, zip(*(out[c] for c in ID_COLUMNS), strict=True), strict=True):
        if key in seen:
            issues.append(
                TableIssue(row, "sample_id", key[2], f"duplicate sample (first at row {seen[key]})")
            )
        seen.setdefault(key, row)
    space = [str(v).strip().lower() for v in raw["space"]]
    out["space"] = space
    seq = raw["sequence"] if "sequence" in raw.columns else pd.Series([""] * len(raw))
    out["sequence"] = ["" if _blank(v) else str(v).strip().lower() for v in seq]
    for col in COORDS:
        values = pd.to_numeric(raw[col].astype(str).str.strip(), errors="coerce").to_numpy(float)
        out[col] = values
        for row, text, v in zip(rows, raw[col], values, strict=True):
            if not np.isfinite(v):
                issues.append(TableIssue(row, col, text, "not a finite number"))
    coords = out[list(COORDS)].to_numpy()
    for row, sp, sq, ijk in zip(rows, space, out["sequence"], coords, strict=True):
        if sp not in SPACES:
            issues.append(TableIssue(row, "space", sp, f"must be one of {list(SPACES)}"))
        if sq and not SEQUENCE_NAME.fullmatch(sq):
            issues.append(TableIssue(row, "sequence", sq, "not a sequence name (e.g. t1ce)"))
        if sp == "voxel":
            if not sq:
                issues.append(
                    TableIssue(row, "sequence", "", "space 'voxel' needs the sequence it indexes")
                )
            if np.all(np.isfinite(ijk)) and np.any(ijk < -0.5):
                issues.append(TableIssue(row, "x", str(ijk.tolist()), "negative voxel index"))
    for col in raw.columns:
        if col in REQUIRED or col == "sequence":
            continue
        if col in markers:
            pos, neg = markers[col]
            vals = []
            for row, v in zip(rows, raw[col], strict=True):
                if _blank(v):
                    vals.append(np.nan)
                elif str(v).strip() in (pos, neg):
                    vals.append(str(v).strip())
                else:
                    vals.append(np.nan)
                    issues.append(TableIssue(row, col, v, f"not in vocabulary {[pos, neg]}"))
            out[col] = vals
        else:
            out[col] = raw[col].to_numpy()
    if known_sessions is not None:
        known = {(str(s), str(t)) for s, t in known_sessions}
        for row, s, t in zip(rows, out["subject"], out["session"], strict=True):
            if (s, t) not in known:
                issues.append(
                    TableIssue(row, "session", f"{s}/{t}", "no such subject/session in the cohort")
                )
    return out, issues


def read_biopsy_table(
    path: str | Path,
    markers: Mapping[str, tuple[str, str]] = SAMPLE_MARKERS,
    known_sessions: Iterable[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Read and validate a biopsy table; raise ConfigError listing every problem with its row."""
    path = Path(path)
    table, issues = validate_biopsy_table(_read(path), markers, known_sessions)
    if issues:
        lines = "\n  ".join(str(i) for i in issues)
        raise ConfigError(f"{len(issues)} problem(s) in biopsy table {path}:\n  {lines}")
    return table


def marker_columns(table: pd.DataFrame, markers: Mapping = SAMPLE_MARKERS) -> list[str]:
    """The marker columns present in a validated table."""
    return [c for c in table.columns if c in markers]
