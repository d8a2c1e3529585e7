"""Cohort stage: WHO CNS5 (2021) integrated type of adult-type diffuse gliomas from labels.

Only the molecular part of an integrated diagnosis is derivable from a labels table; histology is
never available here. The rules (WHO CNS5, Louis et al. 2021, Neuro-Oncology 23:1231):

- IDH-mutant + 1p/19q-codeleted -> Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, CNS WHO
  grade 2 or 3 (histology decides; a CDKN2A/B homozygous deletion is noted as a grade-3 feature).
- IDH-mutant + 1p/19q-intact -> Astrocytoma, IDH-mutant; CDKN2A/B homozygous deletion makes it
  grade 4 whatever the histology, otherwise grade 2 or 3 (histology decides).
- H3 K27-altered -> Diffuse midline glioma, H3 K27-altered, grade 4. WHO requires a midline
  location: a location flag is used when given, otherwise the location is assumed and `basis`
  says so. IDH-mutant with H3 K27-altered is reported as a conflict, not typed.
- IDH-wildtype (H3 K27 not altered) with TERT promoter mutation, EGFR amplification or +7/-10 ->
  Glioblastoma, IDH-wildtype, grade 4, by the molecular criteria only: without histology a
  "histological" glioblastoma (necrosis / microvascular proliferation) cannot be called, so an
  IDH-wildtype tumour without any of the three markers is "not derivable" (histology needed).
  Adult-type only: a patient known to be under 18 is not typed (paediatric-type gliomas).

EGFR: the new columns `egfr_amplification` (amplified/not_amplified) and `egfrviii`
(positive/negative) are preferred. The old merged `egfr` column means "amplification or EGFRvIII",
so `egfr=amplified` proves amplification only when `egfrviii` is known negative (EGFRvIII alone
is never taken as amplification); `egfr=not_amplified` means neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

OLIGO = "Oligodendroglioma, IDH-mutant and 1p/19q-codeleted"
ASTRO = "Astrocytoma, IDH-mutant"
DMG = "Diffuse midline glioma, H3 K27-altered"
GBM = "Glioblastoma, IDH-wildtype"
NOT_DERIVABLE = "not derivable"
# Short codes for filtering (select_subgroup) and file names.
CODES = {
    OLIGO: "oligodendroglioma_idhmut_codel",
    ASTRO: "astrocytoma_idhmut",
    DMG: "diffuse_midline_glioma_h3k27",
    GBM: "glioblastoma_idhwt",
    NOT_DERIVABLE: "not_derivable",
}
OUTPUT_COLUMNS = (
    "subject",
    "who_cns5",
    "who_cns5_code",
    "grade",
    "basis",
    "missing",
    "conflict",
)

# Vocabulary of every column the rules read (positive class first); blank/NaN = unknown.
VOCABULARY: dict[str, tuple[str, str]] = {
    "idh": ("mutant", "wildtype"),
    "codeletion_1p19q": ("codeleted", "intact"),
    "cdkn2ab": ("deleted", "intact"),
    "h3k27": ("altered", "wildtype"),
    "tert": ("mutant", "wildtype"),
    "egfr": ("amplified", "not_amplified"),
    "egfr_amplification": ("amplified", "not_amplified"),
    "egfrviii": ("positive", "negative"),
    "chr7_gain_chr10_loss": ("present", "absent"),
}
TRUE_TOKENS = frozenset({"1", "1.0", "true", "yes", "y", "midline"})
FALSE_TOKENS = frozenset({"0", "0.0", "false", "no", "n", "non_midline", "hemispheric"})
ADULT_AGE = 18.0


@dataclass
class _Call:
    """The decision for one subject while it is being built."""

    who: str = NOT_DERIVABLE
    grade: str = ""
    basis: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    conflict: list[str] = field(default_factory=list)

    def row(self, subject: str) -> dict:
        return {
            "subject": subject,
            "who_cns5": self.who,
            "who_cns5_code": CODES[self.who],
            "grade": self.grade,
            "basis": "; ".join(self.basis),
            "missing": ",".join(dict.fromkeys(self.missing)),
            "conflict": "; ".join(self.conflict),
        }


def _blank(value: Any) -> bool:
    """True for NaN/None/empty cells (the canonical unknown)."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _status(row: Mapping, column: str, subject: str) -> bool | None:
    """True (positive class), False (negative) or None (unknown/absent column) for one label."""
    value = row.get(column)
    if _blank(value):
        return None
    pos, neg = VOCABULARY[column]
    text = str(value).strip()
    if text == pos:
        return True
    if text == neg:
        return False
    raise ValueError(
        f"subject {subject!r}, column {column!r}: value {text!r} is not in the vocabulary "
        f"{[pos, neg]}"
    )


def _flag(value: Any, subject: str, column: str) -> bool | None:
    """A boolean-like location flag (True/False, 1/0, yes/no, midline/hemispheric) or None."""
    if _blank(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_TOKENS:
        return True
    if text in FALSE_TOKENS:
        return False
    raise ValueError(f"subject {subject!r}, column {column!r}: {value!r} is not a yes/no flag")


def egfr_amplification_status(row: Mapping, subject: str = "") -> tuple[bool | None, str]:
    """(EGFR amplified?, how it was decided) from the split or the old merged EGFR columns."""
    amp = _status(row, "egfr_amplification", subject)
    merged = _status(row, "egfr", subject)
    viii = _status(row, "egfrviii", subject)
    if amp is not None:
        note = f"egfr_amplification={VOCABULARY['egfr_amplification'][0 if amp else 1]}"
        return amp, note
    if merged is False:
        return False, "egfr=not_amplified (merged column: neither amplification nor EGFRvIII)"
    if merged is True and viii is False:
        return True, "egfr=amplified with egfrviii=negative (so amplification)"
    if merged is True:
        why = "EGFRvIII positive" if viii else "EGFRvIII status unknown"
        return None, (
            f"egfr=amplified in the merged column ({why}): not used as amplification, since "
            "EGFRvIII alone is not amplification"
        )
    return None, ""


def _egfr_conflict(row: Mapping, subject: str) -> str:
    """A disagreement between the split EGFR columns and the old merged one, if any."""
    amp = _status(row, "egfr_amplification", subject)
    viii = _status(row, "egfrviii", subject)
    merged = _status(row, "egfr", subject)
    if merged is None or (amp is None and viii is None):
        return ""
    if merged is False and (amp or viii):
        return "egfr=not_amplified (merged) but egfr_amplification/egfrviii is positive"
    if merged is True and amp is False and viii is False:
        return "egfr=amplified (merged) but egfr_amplification and egfrviii are both negative"
    return ""


def _idh_mutant(call: _Call, row: Mapping, subject: str) -> None:
    """Oligodendroglioma or astrocytoma, IDH-mutant."""
    codel = _status(row, "codeletion_1p19q", subject)
    cdkn = _status(row, "cdkn2ab", subject)
    if codel is None:
        call.basis.append("idh=mutant; 1p/19q status unknown (oligodendroglioma vs astrocytoma)")
        call.missing.append("codeletion_1p19q")
        return
    if codel:
        call.who, call.grade = OLIGO, "2-3"
        call.basis.append("idh=mutant, codeletion_1p19q=codeleted; grade 2 or 3 by histology")
        if cdkn:
            call.basis.append("cdkn2ab=deleted (associated with grade 3)")
        return
    call.who = ASTRO
    call.basis.append("idh=mutant, codeletion_1p19q=intact")
    if cdkn is None:
        call.grade = "2-4"
        call.basis.append("CDKN2A/B unknown: grade 4 if homozygously deleted, else 2 or 3")
        call.missing.append("cdkn2ab")
    elif cdkn:
        call.grade = "4"
        call.basis.append("cdkn2ab=deleted -> CNS WHO grade 4")
    else:
        call.grade = "2-3"
        call.basis.append("cdkn2ab=intact; grade 2 or 3 by histology")


def _midline(
    call: _Call, row: Mapping, subject: str, location_column: str | None, h3_note: str
) -> None:
    """Diffuse midline glioma, H3 K27-altered (location flag or an explicit assumption)."""
    loc = _flag(row.get(location_column), subject, location_column) if location_column else None
    if loc is False:
        call.basis.append(f"{h3_note}; {location_column}=no")
        call.conflict.append(
            "H3 K27-altered outside the midline: WHO CNS5 diffuse midline glioma needs a "
            "midline location"
        )
        call.missing.append("histology")
        return
    call.who, call.grade = DMG, "4"
    if loc:
        call.basis.append(f"{h3_note}; {location_column}=yes")
    else:
        call.basis.append(f"{h3_note}; midline location ASSUMED (no location flag given)")


def _idh_wildtype(call: _Call, row: Mapping, subject: str, adult: bool | None) -> None:
    """Glioblastoma, IDH-wildtype by its molecular criteria, or what is still needed."""
    tert = _status(row, "tert", subject)
    egfr, egfr_note = egfr_amplification_status(row, subject)
    cnv = _status(row, "chr7_gain_chr10_loss", subject)
    notes = {"tert": "tert=mutant", "egfr": egfr_note,
             "chr7_gain_chr10_loss": "chr7_gain_chr10_loss=present"}  # fmt: skip
    positives = [n for n, s in (("tert", tert), ("egfr", egfr), ("chr7_gain_chr10_loss", cnv)) if s]
    if _status(row, "codeletion_1p19q", subject):
        call.conflict.append(
            "1p/19q codeleted but IDH-wildtype: not an oligodendroglioma (WHO needs both); "
            "partial 1p/19q losses occur in glioblastoma"
        )
    h3_note = (
        "h3k27=wildtype"
        if _status(row, "h3k27", subject) is False
        else ("h3k27 unknown, assumed not altered")
    )
    age_note = "adult" if adult else "age unknown, adult assumed"
    if positives:
        call.who, call.grade = GBM, "4"
        call.basis.append(
            "idh=wildtype; "
            + ", ".join(notes[p] for p in positives)
            + f"; {h3_note}; {age_note}; molecular criteria only (histological glioblastoma, "
            "necrosis or microvascular proliferation, is not assessable without histology)"
        )
        return
    unknown = [
        name
        for name, status in (
            ("tert", tert),
            ("egfr_amplification", egfr),
            ("chr7_gain_chr10_loss", cnv),
        )  # fmt: skip
        if status is None
    ]
    call.basis.append(
        "idh=wildtype; no molecular glioblastoma marker positive"
        + (f" ({egfr_note})" if egfr_note and egfr is None else "")
        + f"; {h3_note}; histological glioblastoma or another IDH-wildtype glioma needs histology"
    )
    if unknown:
        call.missing.extend(unknown)
    call.missing.append("histology")


def _age(row: Mapping, subject: str) -> float | None:
    """Age in years, or None."""
    value = row.get("age")
    if _blank(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"subject {subject!r}, column 'age': {value!r} is not a number") from exc


def classify_subject(
    row: Mapping, subject: str = "", location_column: str | None = "midline"
) -> dict:
    """WHO CNS5 integrated type of one subject's labels (see the module docstring)."""
    call = _Call()
    idh = _status(row, "idh", subject)
    h3 = _status(row, "h3k27", subject)
    age = _age(row, subject)
    conflict = _egfr_conflict(row, subject)
    if conflict:
        call.conflict.append(conflict)
    if h3 and idh:
        call.basis.append("idh=mutant and h3k27=altered")
        call.conflict.append(
            "IDH-mutant and H3 K27-altered together: no WHO CNS5 type; recheck both tests"
        )
        return call.row(subject)
    if h3:
        note = "h3k27=altered" + ("; idh=wildtype" if idh is False else "; idh unknown")
        _midline(call, row, subject, location_column, note)
        return call.row(subject)
    if idh is None:
        call.basis.append("IDH status unknown")
        call.missing.append("idh")
        if h3 is None:
            call.missing.append("h3k27")
        return call.row(subject)
    if idh:
        _idh_mutant(call, row, subject)
        return call.row(subject)
    if age is not None and age < ADULT_AGE:
        call.basis.append(
            f"idh=wildtype, age {age:g} < {ADULT_AGE:g}: adult-type glioblastoma criteria do "
            "not apply (paediatric-type diffuse gliomas need further markers)"
        )
        call.missing.append("paediatric_markers")
        return call.row(subject)
    if h3 is None:
        call.missing.append("h3k27")
    _idh_wildtype(call, row, subject, adult=age is not None)
    return call.row(subject)


def who_cns5_types(
    labels: pd.DataFrame,
    location: pd.Series | Mapping[str, Any] | None = None,
    location_column: str = "midline",
) -> pd.DataFrame:
    """WHO CNS5 integrated type per subject: subject, who_cns5, who_cns5_code, grade, basis,
    missing, conflict.

    `labels`: one row per subject with a `subject` column and any of the canonical label columns
    (absent columns count as unknown). `location`: optional midline flag per subject (a Series or
    mapping indexed by subject, or a column `location_column` in `labels`); without it an
    H3 K27-altered tumour is typed with "midline location ASSUMED" in `basis`.
    `grade` is "4", "2-3" (histology decides) or "2-4" (CDKN2A/B unknown), "" when not derivable.
    `missing` lists, comma-separated, the labels (or "histology") that would settle the call.
    """
    if "subject" not in labels.columns:
        raise ValueError(f"labels need a 'subject' column (have {list(labels.columns)})")
    table = labels.copy()
    if location is not None:
        loc = pd.Series(location) if not isinstance(location, pd.Series) else location
        loc.index = loc.index.astype(str)
        table[location_column] = table["subject"].astype(str).map(loc)
    has_location = location_column in table.columns
    rows = [
        classify_subject(rec, str(rec["subject"]), location_column if has_location else None)
        for rec in table.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def _as_values(value: Any) -> list[str]:
    """A condition's accepted values as strings (scalar or list)."""
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return [str(v) for v in items]


def select_subgroup(labels: pd.DataFrame, within: Mapping[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Rows of `labels` matching every condition of `within`, and a size summary.

    `within` maps a column to one accepted value or a list of them, e.g. `{"idh": "mutant"}` or
    `{"who_cns5_code": ["astrocytoma_idhmut", "oligodendroglioma_idhmut_codel"]}`. A value outside
    a known vocabulary raises ValueError (a typo must not select nobody). The summary has
    `n_total`, `n_selected`, `within` (as text) and per column `{col}_matched`, `{col}_other`,
    `{col}_unknown` counted over all rows.
    """
    if not within:
        raise ValueError("select_subgroup needs at least one condition")
    keep = pd.Series(True, index=labels.index)
    summary: dict[str, Any] = {"n_total": int(len(labels))}
    parts = []
    for col, value in within.items():
        if col not in labels.columns:
            raise ValueError(
                f"subgroup column {col!r} not in the labels (have {list(labels.columns)})"
            )
        accepted = _as_values(value)
        vocab = VOCABULARY.get(col) or (tuple(CODES.values()) if col == "who_cns5_code" else None)
        if vocab is not None:
            bad = [v for v in accepted if v not in vocab]
            if bad:
                raise ValueError(f"subgroup {col}: {bad} not in the vocabulary {list(vocab)}")
        values = labels[col]
        unknown = values.map(_blank)
        match = ~unknown & values.astype(str).str.strip().isin(accepted)
        keep &= match
        summary[f"{col}_matched"] = int(match.sum())
        summary[f"{col}_other"] = int((~match & ~unknown).sum())
        summary[f"{col}_unknown"] = int(unknown.sum())
        parts.append(f"{col} in {accepted}" if len(accepted) > 1 else f"{col}={accepted[0]}")
    summary["within"] = " and ".join(parts)
    summary["n_selected"] = int(keep.sum())
    return labels[keep].copy(), summary


# VASARI-like location features (features.location) that place a tumour in the midline: the deep
# grey nuclei box (thalamus; the basal ganglia lie in it too, hence the centroid condition) and
# the brainstem. The spinal cord is outside the MNI152 brain template the features use.
MIDLINE_PARTS = ("lobe_fraction_deep", "lobe_fraction_brainstem")
LOCATION = "location__all__whole_tumor__"


def midline_flags(
    features: pd.DataFrame, min_fraction: float = 0.5, max_abs_x_mm: float = 12.0
) -> pd.Series:
    """Midline location per row from the location features (True/False; NaN when unmeasured):
    deep + brainstem share of the tumour >= `min_fraction` and |MNI centroid x| <= `max_abs_x_mm`.
    """
    cols = [f"{LOCATION}{c}" for c in MIDLINE_PARTS]
    x_col = f"{LOCATION}centroid_mni_x"
    if not all(c in features.columns for c in [*cols, x_col]):
        return pd.Series(np.nan, index=features.index, dtype=object)
    share = features[cols].astype(float).sum(axis=1, min_count=len(cols))
    x = features[x_col].astype(float).abs()
    flag = (share >= min_fraction) & (x <= max_abs_x_mm)
    return flag.astype(object).where(share.notna() & x.notna(), np.nan)


def integrated_types(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """WHO CNS5 type per subject with a feature row (first session), with its midline flag from
    the location features: cohort, subject, midline, then who_cns5_types' columns."""
    rows = features.sort_values(["cohort", "subject", "session"], kind="stable")
    rows = rows.drop_duplicates(["cohort", "subject"]).reset_index(drop=True)
    flags = rows[["cohort", "subject"]].assign(midline=midline_flags(rows).to_numpy())
    table = flags.merge(labels, on=["cohort", "subject"], how="left")
    out = [
        who_cns5_types(group.drop(columns=["cohort"]).reset_index(drop=True)).assign(cohort=c)
        for c, group in table.groupby("cohort", sort=True)
    ]
    if not out:
        return pd.DataFrame(columns=["cohort", "midline", *OUTPUT_COLUMNS])
    types = pd.concat(out, ignore_index=True)
    types = types.merge(flags, on=["cohort", "subject"], how="left")
    return types[["cohort", "subject", "midline", *OUTPUT_COLUMNS[1:]]]


def type_counts(types: pd.DataFrame) -> pd.DataFrame:
    """Subjects per cohort and WHO CNS5 type (with grade), and how many types were derivable."""
    counts = (
        types.groupby(["cohort", "who_cns5", "grade"], dropna=False)
        .size()
        .rename("n")
        .reset_index()
    )
    return counts.sort_values(["cohort", "who_cns5", "grade"], kind="stable").reset_index(drop=True)


def run_who_cns5(features: str, labels: str, out_types: str, out_counts: str) -> None:
    """Rule who_cns5: the integrated type of every subject and the counts per cohort."""
    from radiogenomics.io import read_tsv, write_tsv

    ids = {"cohort": str, "subject": str, "session": str}
    feats = read_tsv(features, dtype=ids)
    labs = read_tsv(labels, dtype=ids)
    types = integrated_types(feats, labs)
    write_tsv(types, out_types)
    write_tsv(type_counts(types), out_counts)
