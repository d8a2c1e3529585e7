"""Canonical labels (intake and cohort stages): vocabulary, mapping from source tables, validation.

Every cohort's molecular/clinical table is mapped onto one vocabulary (docs/developer_contract.md)
so that the cohort stage never sees source-specific spellings. Problems are reported with the row
number as it appears in the file (header = row 1) and the column, so a curator can fix the sheet.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radiogenomics.errors import ConfigError, SubjectError

log = logging.getLogger(__name__)

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


# Table files as curators export them: a spreadsheet program's CSV/TSV in any common encoding,
# or an Excel workbook whatever its extension says (recognised by its first bytes).
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx/.xlsm/.ods are zip archives
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, encrypted workbooks
# Longest BOM first: the UTF-32-LE BOM starts with the UTF-16-LE one.
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
SEPARATORS = ("\t", ",", ";")


def decode_table_text(raw: bytes, path: str | Path) -> tuple[str, str]:
    """Text of a table file and its encoding: BOM, else UTF-8, else cp1252, else Latin-1."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"table file {path}: starts with a {encoding} byte-order mark but is not "
                    f"valid {encoding} ({exc.reason} at byte {exc.start})"
                ) from exc
    head = raw[:4096]
    if b"\x00" in head:
        # UTF-16 without a BOM has a NUL in every other byte; anything else is binary.
        even, odd = head[0::2], head[1::2]
        if odd and odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
            return raw.decode("utf-16-le", errors="replace"), "utf-16-le"
        if even and even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
            return raw.decode("utf-16-be", errors="replace"), "utf-16-be"
        raise ConfigError(
            f"table file {path} is binary, not text: expected CSV/TSV text or an .xlsx workbook"
        )
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    # Latin-1 maps every byte: the five bytes cp1252 leaves undefined land here.
    return raw.decode("latin-1"), "latin-1"


def _cell_text(value: Any) -> str:
    """An Excel cell as text the way a CSV export writes it (40.0 -> '40', dates ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _read_xlsx(raw: bytes, path: Path) -> list[list[str]]:
    """Rows of the first worksheet of an .xlsx/.xlsm workbook, as text."""
    try:
        import openpyxl
    except ImportError as exc:  # declared in pyproject; a bare environment may lack it
        raise ConfigError(
            f"table file {path} is an Excel workbook and openpyxl is not installed: "
            "install it or save the sheet as CSV"
        ) from exc
    try:
        # A file object: openpyxl refuses paths whose extension is not .xlsx (e.g. a renamed .csv).
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException variants
        raise ConfigError(
            f"table file {path} is a zip archive but not a readable .xlsx workbook "
            f"({type(exc).__name__}: {exc}); save the sheet as CSV or .xlsx"
        ) from exc
    try:
        sheet = book.worksheets[0]
        if len(book.worksheets) > 1:
            log.warning("%s: %d worksheets, reading the first", path, len(book.worksheets))
        rows = sheet.iter_rows(min_row=1, values_only=True)
        return [[_cell_text(v) for v in row] for row in rows]
    finally:
        book.close()


def _choose_separator(header: str, suffix: str) -> str:
    """The suffix's separator when the header line has it, else the commonest of tab , ;"""
    default = "\t" if suffix in (".tsv", ".tab", ".txt") else ","
    if default in header:
        return default
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else default


def read_table_rows(path: str | Path) -> list[list[str]]:
    """Records of a CSV/TSV (any common encoding, separator sniffed) or .xlsx file, as text."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"table file not found: {path}")
    raw = path.read_bytes()
    if raw.startswith(ZIP_MAGIC):
        return _read_xlsx(raw, path)
    if raw.startswith(OLE2_MAGIC):
        raise ConfigError(
            f"table file {path} is a legacy Excel .xls (or an encrypted) workbook, which cannot be "
            "read: save the sheet as .xlsx or CSV"
        )
    text, encoding = decode_table_text(raw, path)
    if encoding not in ("utf-8", "utf-8-sig"):
        log.info("%s read as %s", path, encoding)
    header = text.lstrip("\r\n").split("\n", 1)[0]
    sep = _choose_separator(header, path.suffix.lower())
    try:
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=sep)]
    except csv.Error as exc:
        raise ConfigError(
            f"table file {path}: not a readable {sep!r}-separated table: {exc}"
        ) from exc


def read_table(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A table file as strings; index = record number as a spreadsheet shows it (header = 1).

    Blank records are skipped without renumbering; column names are stripped and may repeat
    (callers refuse the repeats they use, see `duplicated_columns`).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file not found: {path}")
    records = read_table_rows(path)
    numbered = [(i, r) for i, r in enumerate(records, start=1) if any(c.strip() for c in r)]
    if not numbered:
        raise ConfigError(f"{what} file is empty: {path}")
    (_, header), body = numbered[0], numbered[1:]
    # Trailing empty header cells are the spreadsheet's unused columns.
    while header and not header[-1].strip():
        header = header[:-1]
    columns = [c.strip() for c in header]
    rows, index = [], []
    for number, rec in body:
        extra = [c for c in rec[len(columns) :] if c.strip()]
        if extra:
            raise ConfigError(
                f"{what} file {path}: row {number} has {len(columns) + len(extra)} or more "
                f"values but the header has {len(columns)} columns (a separator inside an "
                "unquoted value?)"
            )
        rows.append((rec + [""] * len(columns))[: len(columns)])
        index.append(number)
    if not rows:
        raise ConfigError(f"{what} file has a header but no rows: {path}")
    return pd.DataFrame(rows, columns=columns, index=pd.Index(index, name="row"), dtype=object)


def duplicated_columns(df: pd.DataFrame, used: Iterable[str]) -> dict[str, list[int]]:
    """Columns of `used` that the table has more than once -> their 1-based positions."""
    names = list(df.columns)
    return {c: [i + 1 for i, n in enumerate(names) if n == c] for c in used if names.count(c) > 1}


def _read_table(path: Path) -> pd.DataFrame:
    """Read a labels table as strings; empty or unreadable files raise ConfigError naming it."""
    return read_table(path, what="labels")


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
    """Read a CSV/TSV/xlsx labels table and map it to canonical columns; index = file row."""
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
    # Two columns of one name may disagree: taking either would be a silent guess.
    repeated = duplicated_columns(raw, [id_column, *columns.values()])
    if repeated:
        where = "; ".join(f"{c!r} at columns {pos}" for c, pos in repeated.items())
        raise ConfigError(
            f"labels file {path}: column names used for labels appear more than once ({where}): "
            "keep one of each"
        )
    values: dict[str, dict] = {k: dict(v or {}) for k, v in (spec.get("values") or {}).items()}
    out = pd.DataFrame(index=raw.index.rename("row"))
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
