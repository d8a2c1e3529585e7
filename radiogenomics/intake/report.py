"""Intake stage: per-cohort label validation that never stops the run, and the intake report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.errors import ConfigError
from radiogenomics.intake.discover import safe_id
from radiogenomics.labels import KEY, MARKERS, coerce_labels, load_labels, validate_labels

ISSUE_COLUMNS = ["cohort", "row", "column", "value", "message", "file"]


def validate_cohort_labels(
    cohort: str, path: str | None, spec: dict, subjects: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical labels of one cohort (rows with problems removed) and the list of problems."""
    issues: list[dict] = []
    empty = pd.DataFrame(columns=[KEY])
    if not path:
        return empty, pd.DataFrame(columns=ISSUE_COLUMNS)
    try:
        df = load_labels(path, spec)
    except (ConfigError, OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        msg = str(exc) if str(exc) else type(exc).__name__
        if isinstance(exc, pd.errors.EmptyDataError):
            msg = "labels file is empty"
        issues.append(
            {"cohort": cohort, "row": 0, "column": "", "value": "", "message": msg, "file": path}
        )
        return empty, pd.DataFrame(issues, columns=ISSUE_COLUMNS)
    # Image folders are matched by their alphanumeric ID (see discover.safe_id): do the same here.
    df[KEY] = [safe_id(str(v)) if pd.notna(v) else v for v in df[KEY]]
    if df.empty:
        issues.append(
            {
                "cohort": cohort,
                "row": 0,
                "column": "",
                "value": "",
                "message": "labels file has a header but no rows",
                "file": path,
            }
        )
    found = validate_labels(df)  # unknown subjects are listed by the report, not treated as errors
    drop_rows: set[int] = set()
    for issue in found:
        message = issue.message
        if issue.column == KEY:
            drop_rows.add(issue.row)
        else:
            # One bad cell must not cost the row's valid labels: blank the cell, keep the row.
            df.loc[issue.row, issue.column] = np.nan
            message += "; value ignored, the rest of the row is kept"
        issues.append(
            {
                "cohort": cohort,
                "row": issue.row,
                "column": issue.column,
                "value": issue.value,
                "message": message,
                "file": path,
            }
        )
    # A duplicated ID is ambiguous: drop every row of that subject, not just the second.
    dup_ids = {i.value for i in found if i.message.startswith("duplicate")}
    keep = ~df.index.isin(drop_rows) & ~df[KEY].astype(str).isin(dup_ids)
    clean = coerce_labels(df[keep]) if keep.any() else empty
    return clean.reset_index(drop=True), pd.DataFrame(issues, columns=ISSUE_COLUMNS)


def intake_report(
    manifests: list[str],
    labels_tables: dict[str, str],
    refused: pd.DataFrame | list[dict] | None = None,
) -> pd.DataFrame:
    """One row per subject/session with images and/or labels: what is there, what is missing.

    `refused` (from `discover_subjects`) adds a `refused_id` row per entry left out for an
    unusable ID, under its raw ID, with the reason."""
    rows = []
    for r in pd.DataFrame(refused if refused is not None else []).to_dict("records"):
        rows.append(
            {
                "cohort": r["cohort"],
                "subject": r["raw_subject"],
                "session": r["raw_session"],
                "status": "refused_id",
                "has_images": False,
                "has_labels": False,
                "sequences": "",
                "message": r["reason"],
            }
        )
    labels = {c: pd.read_csv(p, sep="\t", dtype={KEY: str}) for c, p in labels_tables.items()}
    for path in manifests:
        p = Path(path)
        sd = p.parent.parent
        cohort, subject, session = sd.parent.parent.name, sd.parent.name[4:], sd.name[4:]
        failure = sd / "qc" / "failure.json"
        status, message, sequences = "ok", "", ""
        if failure.exists():
            rec = json.loads(failure.read_text())
            status, message = f"failed:{rec.get('stage', '')}", rec.get("message", "")
        elif p.stat().st_size:
            man = json.loads(p.read_text())
            sequences = ",".join(man["sequences"])
            if man.get("missing"):
                message = "; ".join(f"{k}: {v}" for k, v in man["missing"].items())
        lab = labels.get(cohort, pd.DataFrame(columns=[KEY]))
        has_labels = subject in set(lab[KEY].astype(str))
        row = {
            "cohort": cohort,
            "subject": subject,
            "session": session,
            "status": status,
            "has_images": status == "ok",
            "has_labels": has_labels,
            "sequences": sequences,
            "message": message,
        }
        if has_labels:
            rec = lab[lab[KEY].astype(str) == subject].iloc[0]
            for m in MARKERS:
                row[f"label_{m}"] = rec.get(m, "") if pd.notna(rec.get(m, None)) else ""
        if not has_labels and status == "ok":
            row["status"] = "images_without_labels"
        rows.append(row)
    imaged = {(r["cohort"], r["subject"]) for r in rows if r["status"] != "refused_id"}
    for cohort, lab in labels.items():
        for subject in lab[KEY].astype(str):
            if (cohort, subject) not in imaged:
                rows.append(
                    {
                        "cohort": cohort,
                        "subject": subject,
                        "session": "",
                        "status": "labels_without_images",
                        "has_images": False,
                        "has_labels": True,
                        "sequences": "",
                        "message": "labels present but no images found for this subject",
                    }
                )
    df = pd.DataFrame(rows)
    return (
        df.sort_values(["cohort", "subject", "session"]).reset_index(drop=True) if len(df) else df
    )
