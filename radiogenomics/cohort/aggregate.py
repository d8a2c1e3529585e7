"""Aggregation (cohort stage): per-subject feature files + feature-table cohorts -> one table.

Subjects with a failure marker (or empty placeholder feature files) are left out and listed in
`results/qc/failures.tsv`; the rest become one row each with cohort/site/scanner/role columns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from radiogenomics.cohort.feature_table_cohort import load_feature_table
from radiogenomics.io import read_tsv
from radiogenomics.labels import KEY
from radiogenomics.paths import failure_marker, subject_dir

log = logging.getLogger(__name__)
ID_COLUMNS = ["cohort", "subject", "session"]
META_COLUMNS = ["role", "site", "scanner"]
FAILURE_COLUMNS = ["cohort", "subject", "session", "stage", "file", "message"]


def is_feature_column(name: str) -> bool:
    """`{family}__...` feature columns (not ids, provenance or qc)."""
    return "__" in name and not name.startswith("prov__")


def read_feature_row(path: Path) -> dict[str, object]:
    """Numeric feature columns and qc_reason of a one-row feature TSV."""
    df = read_tsv(path)
    if len(df) != 1:
        raise ValueError(f"{path}: expected one row, found {len(df)}")
    numeric = df.select_dtypes(include=["number", "bool"])  # as is_numeric_dtype
    keep = [c for c in numeric.columns if is_feature_column(c)]
    row: dict[str, object] = dict(
        zip(keep, numeric[keep].iloc[0].astype(float).tolist(), strict=True)
    )
    reason = df["qc_reason"].iloc[0] if "qc_reason" in df.columns else ""
    row["qc_reason"] = "" if pd.isna(reason) else str(reason)
    return row


def subject_failure(sd: Path, files: list[Path]) -> dict[str, str] | None:
    """The failure record of a subject, from its marker or from an empty/missing feature file."""
    marker = failure_marker(sd)
    if marker.exists() and marker.stat().st_size:
        rec = json.loads(marker.read_text())
        return {k: str(rec.get(k, "")) for k in ("stage", "file", "message")}
    for f in files:
        if not f.exists() or f.stat().st_size == 0:
            return {"stage": "features", "file": str(f), "message": "feature file missing or empty"}
    return None


def collect_subject(
    sd: Path, families: Iterable[str], habitats: bool = True
) -> tuple[dict[str, object] | None, dict[str, str] | None]:
    """(feature row, None) for a usable subject, (None, failure) otherwise."""
    files = [sd / "features" / f"{fam}.tsv" for fam in families]
    fail = subject_failure(sd, files)
    if fail:
        return None, fail
    row: dict[str, object] = {}
    reasons = []
    for f in files:
        r = read_feature_row(f)
        reasons.append(str(r.pop("qc_reason")))
        row.update(r)
    hab = sd / "habitats" / "habitat_fractions.tsv"
    if habitats and hab.exists() and hab.stat().st_size:
        r = read_feature_row(hab)
        reasons.append(str(r.pop("qc_reason")))
        row.update(r)
    row["qc_reason"] = "; ".join(x for x in reasons if x)
    return row, None


def aggregate(
    subjects: pd.DataFrame,
    families: Iterable[str],
    feature_table_cohorts: Iterable[Mapping] = (),
    root: str | Path = "results",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, failures): one row per usable subject/session of every cohort."""
    families = list(families)
    rows, failures = [], []
    for rec in subjects.sort_values(ID_COLUMNS, kind="stable").to_dict("records"):
        sd = subject_dir(rec["cohort"], rec["subject"], rec["session"], root)
        row, fail = collect_subject(sd, families)
        ids = {k: str(rec[k]) for k in ID_COLUMNS}
        if fail:
            failures.append({**ids, **fail})
            continue
        meta = {k: str(rec.get(k, "") or "") for k in META_COLUMNS}
        rows.append({**ids, **meta, **row})
    tables = [pd.DataFrame(rows)] if rows else []
    for entry in feature_table_cohorts:
        ft = load_feature_table(entry)
        ft["role"] = entry["role"]
        ft["site"] = entry.get("site") or entry["name"]
        ft["scanner"] = entry.get("scanner", "") or ""
        ft["qc_reason"] = ""
        tables.append(ft)
    features = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=ID_COLUMNS)
    features = order_columns(features)
    fails = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    log.info("aggregated %d rows, %d failed subjects", len(features), len(fails))
    return features, fails


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """ids, meta, sorted features, qc_reason; rows sorted by ids (stable, byte-identical reruns)."""
    for col in [*ID_COLUMNS, *META_COLUMNS, "qc_reason"]:
        if col not in df.columns:
            df[col] = ""
    feats = sorted(c for c in df.columns if is_feature_column(c))
    # One concat, not a column assignment: assigning tens of thousands of columns (radiomics at
    # 1 mm) splits pandas' blocks once per column, minutes for a two-row table.
    df = pd.concat(
        [df[[*ID_COLUMNS, *META_COLUMNS]], df[feats].astype(float), df[["qc_reason"]]], axis=1
    )
    return df.sort_values(ID_COLUMNS, kind="stable").reset_index(drop=True)


def merge_labels(tables: Mapping[str, str | Path]) -> pd.DataFrame:
    """Canonical per-cohort labels (intake's results/{cohort}/labels.tsv) stacked with `cohort`."""
    frames = []
    for cohort, path in sorted(tables.items()):
        p = Path(path)
        if not p.exists() or p.stat().st_size == 0:
            continue
        df = read_tsv(p, dtype={KEY: str})
        if df.empty:
            continue
        df.insert(0, "cohort", cohort)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["cohort", KEY])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["cohort", KEY], kind="stable").reset_index(drop=True)


def summary_table(features: pd.DataFrame, failures: pd.DataFrame, labels: pd.DataFrame):
    """Counts per cohort: rows aggregated, subjects failed, subjects with labels."""
    cohorts = sorted(set(features["cohort"]) | set(failures["cohort"]) | set(labels["cohort"]))
    rows = []
    for c in cohorts:
        f = features[features["cohort"] == c]
        lab = set(labels.loc[labels["cohort"] == c, KEY].astype(str))
        rows.append(
            {
                "cohort": c,
                "rows": len(f),
                "subjects": f["subject"].nunique(),
                "failed": int((failures["cohort"] == c).sum()),
                "with_labels": int(f["subject"].isin(lab).sum()),
                "labels_without_features": len(lab - set(f["subject"])),
                "features": int(np.sum([is_feature_column(x) for x in f.columns])),
            }
        )
    return pd.DataFrame(rows)


def run_aggregate(
    subjects: list[dict],
    families: list[str],
    feature_table_cohorts: list[dict],
    label_tables: Mapping[str, str],
    out_features: str,
    out_labels: str,
    out_failures: str,
    out_summary: str,
) -> None:
    """Rule aggregate_features: write features.tsv, labels.tsv, failures.tsv and the summary.

    failures.tsv lists the subjects that were attempted and failed; labels-table problems are in
    results/qc/labels/{cohort}_issues.tsv and labels without images in the intake report.
    """
    from radiogenomics.io import write_tsv

    # An empty record list (feature-table cohorts only) still needs the id columns.
    table = pd.DataFrame(subjects) if subjects else pd.DataFrame(columns=ID_COLUMNS + META_COLUMNS)
    features, failures = aggregate(table, families, feature_table_cohorts)
    labels = merge_labels(label_tables)
    write_tsv(features, out_features)
    write_tsv(labels, out_labels)
    write_tsv(failures, out_failures)
    write_tsv(summary_table(features, failures, labels), out_summary)


def usable_subjects(
    cohorts: list[str], features: pd.DataFrame, failures: pd.DataFrame
) -> pd.DataFrame:
    """Per cohort: subjects with features (usable), subjects failed, and the most common reason."""
    rows = []
    for cohort in cohorts:
        fails = failures[failures["cohort"] == cohort]
        reasons = (fails["stage"].astype(str) + ": " + fails["message"].astype(str)).value_counts()
        # Ties go to the alphabetically first reason, so the message is the same on every machine.
        reasons = reasons.sort_index().sort_values(ascending=False, kind="stable")
        rows.append(
            {
                "cohort": cohort,
                "usable": int(features.loc[features["cohort"] == cohort, "subject"].nunique()),
                "failed": int(fails["subject"].nunique()),
                "most_common_reason": (
                    f"{reasons.index[0]} ({reasons.iloc[0]} of {len(fails)})" if len(fails) else ""
                ),
            }
        )
    return pd.DataFrame(rows, columns=["cohort", "usable", "failed", "most_common_reason"])


def check_usable_subjects(
    cohorts: list[str], features_tsv: str, failures_tsv: str, out: str
) -> None:
    """Rule check_usable_subjects: the table, and a clear error when a cohort has no usable
    subject (the run then ends non-zero after every other job has finished)."""
    from radiogenomics.io import write_tsv

    ids = {"cohort": str, "subject": str, "session": str}
    features = read_tsv(features_tsv, dtype=ids)
    failures = read_tsv(failures_tsv, dtype=str, keep_default_na=False)
    table = usable_subjects(cohorts, features, failures)
    write_tsv(table, out)
    empty = table[table["usable"] == 0]
    if len(empty):
        lines = [
            f"cohort {r.cohort}: no usable subject ({r.failed} failed"
            + (f"; most common reason: {r.most_common_reason})" if r.failed else ", none found)")
            for r in empty.itertuples()
        ]
        message = "\n".join(["A cohort has no usable subject:", *lines])
        logging.getLogger("radiogenomics.cohort").error(message)
        raise SystemExit(message)
