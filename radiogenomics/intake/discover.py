"""Intake stage: build the subject table once, cheaply, from each cohort's layout (parse time).

Only directory listings happen here (no image or DICOM header reads), so the DAG for
thousands of subjects builds in seconds.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pandas as pd

from radiogenomics.errors import ConfigError

SUBJECT_COLUMNS = [
    "cohort",
    "subject",
    "session",
    "role",
    "site",
    "scanner",
    "layout",
    "segmentation",
    "skull_stripped",
    "label_convention",
    "source",
]
BIDS_ID = re.compile(r"^[A-Za-z0-9]+$")


def safe_id(raw: str) -> str:
    """An ID usable as a BIDS entity and wildcard: alphanumerics only."""
    return re.sub(r"[^A-Za-z0-9]", "", raw)


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path))
    except FileNotFoundError as exc:
        raise ConfigError(f"cohort folder not found: {path}") from exc


def _match(names: list[str], pattern: str) -> list[str]:
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def discover_brats(cohort: dict) -> list[dict]:
    """`{path}/{subject}/` folders with one file per sequence matched by glob patterns."""
    root = Path(cohort["path"])
    rows = []
    for name in _listdir(root):
        sub_dir = root / name
        if not sub_dir.is_dir():
            continue
        files = _listdir(sub_dir)
        sources = {}
        for seq, pattern in cohort["patterns"].items():
            hits = _match(files, pattern)
            if (
                not hits and "/" in pattern
            ):  # pattern into a subfolder, e.g. segmentations/fusion*.nii.gz
                sub, pat = pattern.split("/", 1)
                if (sub_dir / sub).is_dir():
                    hits = [f"{sub}/{h}" for h in _match(_listdir(sub_dir / sub), pat)]
            if len(hits) > 1:
                # `*t1.nii.gz` must not also take `*_t1ce.nii.gz`: prefer the shortest exact match.
                hits = sorted(hits, key=len)[:1]
            if hits:
                sources[seq] = str(sub_dir / hits[0])
        rows.append(
            {
                "subject": safe_id(name),
                "session": cohort["session"],
                "source": sources,
                "source_dir": str(sub_dir),
            }
        )
    return rows


def discover_bids(cohort: dict) -> list[dict]:
    """`{path}/sub-X[/ses-Y]/*/sub-X[_ses-Y]_*{suffix}.nii.gz` (BIDS raw layout)."""
    root = Path(cohort["path"])
    rows = []
    for sub in _listdir(root):
        if not sub.startswith("sub-") or not (root / sub).is_dir():
            continue
        sessions = [s for s in _listdir(root / sub) if s.startswith("ses-")] or [None]
        for ses in sessions:
            ses_dir = root / sub / ses if ses else root / sub
            files = []
            for datatype in _listdir(ses_dir):
                if (ses_dir / datatype).is_dir():
                    files += [f"{datatype}/{f}" for f in _listdir(ses_dir / datatype)]
            sources = {}
            for seq, suffix in cohort["bids_suffixes"].items():
                hits = [
                    f
                    for f in files
                    if f.endswith(f"_{suffix}.nii.gz") or f.endswith(f"_{suffix}.nii")
                ]
                if hits:
                    sources[seq] = str(ses_dir / sorted(hits, key=len)[0])
            rows.append(
                {
                    "subject": sub[4:],
                    "session": ses[4:] if ses else cohort["session"],
                    "source": sources,
                    "source_dir": str(ses_dir),
                }
            )
    return rows


def discover_dicom(cohort: dict) -> list[dict]:
    """TCIA-style `{path}/{PatientID}/{study}/...`: one session per study folder."""
    root = Path(cohort["path"])
    rows = []
    for sub in _listdir(root):
        if not (root / sub).is_dir():
            continue
        studies = [s for s in _listdir(root / sub) if (root / sub / s).is_dir()]
        for i, study in enumerate(studies, start=1):
            session = safe_id(study) if len(safe_id(study)) <= 12 and safe_id(study) else f"{i:02d}"
            rows.append(
                {
                    "subject": safe_id(sub),
                    "session": session,
                    "source": {},
                    "source_dir": str(root / sub / study),
                }
            )
    return rows


def discover_nifti_table(cohort: dict) -> list[dict]:
    """A TSV with columns subject, session, sequence, path (relative to the TSV's folder)."""
    table = Path(cohort["table"])
    if not table.exists():
        raise ConfigError(f"cohort {cohort['name']}: nifti-table not found: {table}")
    df = pd.read_csv(table, sep="\t", dtype=str)
    missing = {"subject", "sequence", "path"} - set(df.columns)
    if missing:
        raise ConfigError(f"cohort {cohort['name']}: {table} lacks columns {sorted(missing)}")
    if "session" not in df:
        df["session"] = cohort["session"]
    rows = []
    for (subject, session), grp in df.groupby(["subject", "session"], sort=True):
        sources = {}
        for _, r in grp.iterrows():
            p = Path(r["path"])
            sources[r["sequence"]] = str(p if p.is_absolute() else table.parent / p)
        rows.append(
            {
                "subject": safe_id(subject),
                "session": safe_id(session),
                "source": sources,
                "source_dir": str(table.parent),
            }
        )
    return rows


def discover_demo(cohort: dict, plan: pd.DataFrame) -> list[dict]:
    """Demo cohorts: subjects come from the deterministic plan, before any image exists."""
    sub = plan[plan["cohort"] == cohort["name"]]
    return [
        {"subject": r.subject, "session": r.session, "source": {}, "source_dir": cohort["path"]}
        for r in sub.itertuples()
    ]


DISCOVER = {
    "brats": discover_brats,
    "bids": discover_bids,
    "tcia-dicom": discover_dicom,
    "nifti-table": discover_nifti_table,
}


def build_subject_table(cohorts: list[dict], demo_plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cohort/subject/session of each imaging cohort (not feature-table ones)."""
    rows = []
    for cohort in cohorts:
        if cohort["layout"] == "feature-table":
            continue
        if cohort.get("demo") and demo_plan is not None:
            found = discover_demo(cohort, demo_plan)
        else:
            found = DISCOVER[cohort["layout"]](cohort)
        for r in found:
            rows.append(
                {
                    "cohort": cohort["name"],
                    "subject": r["subject"],
                    "session": r["session"],
                    "role": cohort["role"],
                    "site": cohort.get("site") or cohort["name"],
                    "scanner": cohort.get("scanner", ""),
                    "layout": cohort["layout"],
                    "segmentation": cohort["segmentation"],
                    "skull_stripped": cohort["skull_stripped"],
                    "label_convention": cohort["label_convention"],
                    "source": r["source"],
                    "source_dir": r["source_dir"],
                }
            )
    df = pd.DataFrame(rows, columns=SUBJECT_COLUMNS + ["source_dir"])
    dup = df.duplicated(["cohort", "subject", "session"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise ConfigError(
            f"cohort {first.cohort}: subject/session {first.subject}/{first.session} appears twice "
            f"after ID sanitising (source folders: {sorted(df[dup].source_dir.tolist())[:4]})"
        )
    return df.set_index(["cohort", "subject", "session"], drop=False).sort_index()
