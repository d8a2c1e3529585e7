"""Intake stage: per-cohort label validation that never stops the run, and the intake report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.errors import ConfigError
from radiogenomics.intake.discover import safe_id
from radiogenomics.intake.feature_table import read_feature_table
from radiogenomics.io import write_tsv
from radiogenomics.labels import KEY, MARKERS, coerce_labels, load_labels, validate_labels
from radiogenomics.paths import entities_from_path, failure_marker, session_dir_of

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


REPORT_COLUMNS = [
    "cohort", "subject", "session", "status", "n_subjects", "has_images", "has_labels",
    "sequences", "message",
]  # fmt: skip
UNMATCHED_COLUMNS = ["cohort", "subject", "labels_file"]


def session_row(manifest: str | Path, labelled: set[str]) -> dict:
    """The intake report row of one imaged session: ok, failed at a stage, or without labels."""
    p = Path(manifest)
    cohort, subject, session = entities_from_path(p)
    failure = failure_marker(session_dir_of(p))
    status, message, sequences = "ok", "", ""
    if failure.exists() and failure.stat().st_size:
        rec = json.loads(failure.read_text())
        status, message = f"failed:{rec.get('stage', '')}", rec.get("message", "")
    elif p.stat().st_size:
        man = json.loads(p.read_text())
        sequences = ",".join(man["sequences"])
        if man.get("missing"):
            message = "; ".join(f"{k}: {v}" for k, v in man["missing"].items())
    if status == "ok" and subject not in labelled:
        status = "images_without_labels"
    return {
        "cohort": cohort,
        "subject": subject,
        "session": session,
        "status": status,
        "has_images": not status.startswith("failed"),
        "has_labels": subject in labelled,
        "sequences": sequences,
        "message": message,
    }


def intake_report(
    manifests: list[str],
    labels_tables: dict[str, str],
    feature_tables: dict[str, list[str]] | None = None,
    labels_files: dict[str, str | None] | None = None,
    refused: pd.DataFrame | list[dict] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What intake found, and the labels rows that match no images.

    The report has one row per imaged session (or feature-table subject, which has features
    but no images by design) with its status, one `refused_id` row per entry left out for an
    unusable ID (`refused`, from `discover_subjects`; under its raw ID, with the reason), and one
    summary row per cohort counting its labels rows without images (`n_subjects`); those subjects
    are listed in the second table.
    """
    labels = {c: pd.read_csv(p, sep="\t", dtype={KEY: str}) for c, p in labels_tables.items()}
    known = {c: set(lab[KEY].astype(str)) for c, lab in labels.items()}
    rows = [session_row(m, known.get(entities_from_path(m)[0], set())) for m in manifests]
    for cohort, subjects in (feature_tables or {}).items():
        for subject in subjects:
            has_labels = subject in known.get(cohort, set())
            rows.append(
                {
                    "cohort": cohort,
                    "subject": subject,
                    "session": "",
                    "status": "ok" if has_labels else "features_without_labels",
                    "has_images": False,
                    "has_labels": has_labels,
                    "sequences": "",
                    "message": "feature table (no images by design)",
                }
            )
    for row in rows:
        row["n_subjects"] = 1
        lab = labels.get(row["cohort"])
        if row["has_labels"] and lab is not None:
            rec = lab[lab[KEY].astype(str) == row["subject"]].iloc[0]
            for m in MARKERS:
                row[f"label_{m}"] = rec.get(m, "") if pd.notna(rec.get(m, None)) else ""
    present = {(r["cohort"], r["subject"]) for r in rows}
    for r in pd.DataFrame(refused if refused is not None else []).to_dict("records"):
        rows.append(
            {
                "cohort": r["cohort"],
                "subject": r["raw_subject"],
                "session": r["raw_session"],
                "status": "refused_id",
                "n_subjects": 1,
                "has_images": False,
                "has_labels": False,
                "sequences": "",
                "message": r["reason"],
            }
        )
    unmatched = [
        {"cohort": c, "subject": s, "labels_file": (labels_files or {}).get(c) or ""}
        for c in sorted(known)
        for s in sorted(known[c])
        if (c, s) not in present
    ]
    unmatched_df = pd.DataFrame(unmatched, columns=UNMATCHED_COLUMNS)
    for cohort, grp in unmatched_df.groupby("cohort", sort=True):
        examples = ", ".join(grp["subject"].head(3))
        rows.append(
            {
                "cohort": cohort,
                "subject": "",
                "session": "",
                "status": "labels_without_images",
                "n_subjects": len(grp),
                "has_images": False,
                "has_labels": True,
                "sequences": "",
                "message": f"{len(grp)} subject(s) of the labels table have no images "
                f"(e.g. {examples}; all in results/qc/labels_without_images.tsv)",
            }
        )
    markers = [f"label_{m}" for m in MARKERS if any(f"label_{m}" in r for r in rows)]
    df = pd.DataFrame(rows, columns=REPORT_COLUMNS + markers)
    df = df.sort_values(["cohort", "subject", "session"], kind="stable").reset_index(drop=True)
    return df, unmatched_df


def run_intake_report(
    manifests: list[str],
    labels_tables: dict[str, str],
    feature_table_cohorts: list[dict],
    labels_files: dict[str, str | None],
    out_report: str,
    out_unmatched: str,
    refused: list[dict] | None = None,
) -> None:
    """Rule intake_report: the intake report and the labels rows without images."""
    feature_subjects = {
        c["name"]: read_feature_table(c)["subject"].tolist() for c in feature_table_cohorts
    }
    report, unmatched = intake_report(
        manifests, labels_tables, feature_subjects, labels_files, refused
    )
    write_tsv(report, out_report)
    write_tsv(unmatched, out_unmatched)
