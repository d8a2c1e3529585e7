"""Intake stage: build the subject table once, cheaply, from each cohort's layout (parse time).

Only directory listings happen here (no image reads; one DICOM header per TCIA study, for its
date), so the DAG for thousands of subjects builds in seconds. Every layout's IDs go through one
rule (`safe_id`); an entry whose ID is unusable is refused, listed with the cohort, layout and raw
ID, and left out, so it never blocks the other subjects and cohorts.
"""

from __future__ import annotations

import datetime
import fnmatch
import logging
import os
import re
import unicodedata
from pathlib import Path

import pandas as pd

from radiogenomics.errors import ConfigError

log = logging.getLogger(__name__)

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
# Days from the subject's first study (tcia-dicom with `session_day_offset: true`), else empty.
EXTRA_COLUMNS = ["source_dir", "study_day"]
REFUSED_COLUMNS = [
    "cohort",
    "layout",
    "raw_subject",
    "raw_session",
    "subject",
    "session",
    "source_dir",
    "reason",
]
BIDS_ID = re.compile(r"^[A-Za-z0-9]+$")
# Study dates in TCIA/NBIA-style folder names, used only when no DICOM header gives one.
NAME_DATES = (
    (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), ("y", "m", "d")),
    (re.compile(r"(?<!\d)(\d{2})-(\d{2})-(\d{4})(?!\d)"), ("m", "d", "y")),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"), ("y", "m", "d")),
)


def safe_id(raw: str) -> str:
    """An ID usable as a BIDS entity and wildcard: ASCII letters and digits only.

    Accented letters keep their base letter (`ü` -> `u`); every other character is removed. The
    same rule serves every layout and the labels tables, so the two always join."""
    folded = unicodedata.normalize("NFKD", str(raw))
    return re.sub(r"[^A-Za-z0-9]", "", folded)


def _entry(raw_subject: str, raw_session: str, source: dict, source_dir: str, **extra) -> dict:
    """One discovered subject/session: sanitised IDs plus the raw ones they came from."""
    return {
        "subject": safe_id(raw_subject),
        "session": safe_id(raw_session),
        "raw_subject": str(raw_subject),
        "raw_session": str(raw_session),
        "source": source,
        "source_dir": source_dir,
        **extra,
    }


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
        rows.append(_entry(name, cohort["session"], sources, str(sub_dir)))
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
                _entry(sub[4:], ses[4:] if ses else cohort["session"], sources, str(ses_dir))
            )
    return rows


def _valid_date(y: str, m: str, d: str) -> datetime.date | None:
    try:
        return datetime.date(int(y), int(m), int(d))
    except ValueError:
        return None


def date_in_name(name: str) -> datetime.date | None:
    """A calendar date written in a folder name (2019-10-07, 06-28-1997-..., 20191007), if any."""
    for pattern, order in NAME_DATES:
        for match in pattern.finditer(name):
            parts = dict(zip(order, match.groups(), strict=True))
            date = _valid_date(parts["y"], parts["m"], parts["d"])
            if date is not None:
                return date
    return None


def _first_files(folder: Path, limit: int = 5) -> list[Path]:
    """Up to `limit` files under `folder`, depth first in name order (hidden entries skipped)."""
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return found
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_file():
            found.append(Path(e.path))
        elif e.is_dir():
            found += _first_files(Path(e.path), limit - len(found))
        if len(found) >= limit:
            break
    return found[:limit]


def study_datetime(study_dir: Path) -> tuple[datetime.date, str] | None:
    """(StudyDate, StudyTime) from the first readable DICOM header of a study folder, if any."""
    import pydicom  # only tcia-dicom cohorts pay for the import

    for path in _first_files(study_dir):
        try:
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["StudyDate", "StudyTime"]
            )
        except Exception:  # not DICOM (a README, a thumbnail): try the next file
            continue
        raw = str(getattr(ds, "StudyDate", "") or "").strip()
        if re.fullmatch(r"\d{8}", raw):
            date = _valid_date(raw[:4], raw[4:6], raw[6:])
            if date is not None:
                return date, str(getattr(ds, "StudyTime", "") or "").strip()
    return None


def order_studies(study_dirs: list[Path]) -> list[tuple[Path, datetime.date | None]]:
    """Studies in date order (DICOM StudyDate, else a date in the folder name), else name order.

    Dates decide only when every study of the subject has one: a partial order would be a guess."""
    dated = []
    for d in study_dirs:
        found = study_datetime(d)
        if found is None:
            named = date_in_name(d.name)
            found = (named, "") if named else None
        dated.append((d, found))
    if all(f is not None for _, f in dated):
        dated.sort(key=lambda x: (x[1][0], x[1][1], x[0].name))
        return [(d, f[0]) for d, f in dated]
    return [(d, None) for d, _ in sorted(dated, key=lambda x: x[0].name)]


def discover_dicom(cohort: dict) -> list[dict]:
    """TCIA-style `{path}/{PatientID}/{study}/...`: one session per study, numbered 01, 02, ...

    Session IDs never carry the study folder's name, which is often the study date (PHI): studies
    are numbered in study-date order. With `session_day_offset: true` each session also gets its
    days from the subject's first study (`study_day`)."""
    root = Path(cohort["path"])
    with_days = bool(cohort.get("session_day_offset"))
    rows = []
    for sub in _listdir(root):
        if not (root / sub).is_dir():
            continue
        studies = [root / sub / s for s in _listdir(root / sub) if (root / sub / s).is_dir()]
        studies = [s for s in studies if not s.name.startswith(".")]
        ordered = order_studies(studies)
        first = ordered[0][1] if ordered else None
        for i, (study, date) in enumerate(ordered, start=1):
            day = (date - first).days if with_days and date is not None and first else None
            rows.append(_entry(sub, f"{i:02d}", {}, str(study), study_day=day))
    return rows


def discover_nifti_table(cohort: dict) -> list[dict]:
    """A TSV with columns subject, session, sequence, path (relative to the TSV's folder)."""
    from radiogenomics.labels import read_table  # any common encoding, or an .xlsx

    table = Path(cohort["table"])
    if not table.exists():
        raise ConfigError(f"cohort {cohort['name']}: nifti-table not found: {table}")
    df = read_table(table, what=f"cohort {cohort['name']}: nifti-table")
    missing = {"subject", "sequence", "path"} - set(df.columns)
    if missing:
        raise ConfigError(f"cohort {cohort['name']}: {table} lacks columns {sorted(missing)}")
    if "session" not in df:
        df["session"] = cohort["session"]
    df = df.astype({c: str for c in ("subject", "session")})
    rows = []
    for (subject, session), grp in df.groupby(["subject", "session"], sort=True):
        sources = {}
        for _, r in grp.iterrows():
            p = Path(r["path"])
            sources[r["sequence"]] = str(p if p.is_absolute() else table.parent / p)
        rows.append(_entry(subject, session, sources, str(table.parent)))
    return rows


def discover_demo(cohort: dict, plan: pd.DataFrame) -> list[dict]:
    """Demo cohorts: subjects come from the deterministic plan, before any image exists."""
    sub = plan[plan["cohort"] == cohort["name"]]
    return [_entry(r.subject, r.session, {}, cohort["path"]) for r in sub.itertuples()]


DISCOVER = {
    "brats": discover_brats,
    "bids": discover_bids,
    "tcia-dicom": discover_dicom,
    "nifti-table": discover_nifti_table,
}


def _refusal(cohort: dict, entry: dict, reason: str) -> dict:
    """A row of the refused table: where the entry came from and why it was left out."""
    return {
        "cohort": cohort["name"],
        "layout": cohort["layout"],
        "raw_subject": entry.get("raw_subject", entry["subject"]),
        "raw_session": entry.get("raw_session", entry["session"]),
        "subject": entry["subject"],
        "session": entry["session"],
        "source_dir": entry["source_dir"],
        "reason": reason,
    }


def usable_entries(cohort: dict, found: list[dict]) -> tuple[list[dict], list[dict]]:
    """(entries whose IDs are usable, refusals): empty IDs and IDs that collide are refused."""
    layout = f"cohort {cohort['name']!r} (layout {cohort['layout']})"
    kept, refused = [], []
    for e in found:
        for entity in ("subject", "session"):
            if not e[entity]:
                raw = e.get(f"raw_{entity}", "")
                refused.append(
                    _refusal(
                        cohort,
                        e,
                        f"{layout}: {entity} ID {raw!r} ({e['source_dir']}) has no ASCII letter or "
                        "digit, which are all an ID keeps: rename it",
                    )
                )
                break
        else:
            kept.append(e)
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in kept:
        groups.setdefault((e["subject"], e["session"]), []).append(e)
    usable = []
    for (subject, session), entries in groups.items():
        if len(entries) == 1:
            usable += entries
            continue
        # Which of them the labels table means cannot be told: refuse them all.
        raws = sorted(f"{e.get('raw_subject')}/{e.get('raw_session')}" for e in entries)
        dirs = sorted({e["source_dir"] for e in entries})[:4]
        for e in entries:
            refused.append(
                _refusal(
                    cohort,
                    e,
                    f"{layout}: subject/session IDs {raws} all become {subject}/{session} once "
                    f"characters other than letters and digits are removed (sources {dirs}): "
                    "rename all but one",
                )
            )
    return usable, refused


def discover_subjects(
    cohorts: list[dict], demo_plan: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(subject table, refused entries): one row per usable cohort/subject/session of each imaging
    cohort (not feature-table ones), and one per entry left out for an unusable ID
    (`REFUSED_COLUMNS`, `reason` naming cohort, layout and the raw ID)."""
    rows, refused = [], []
    for cohort in cohorts:
        if cohort["layout"] == "feature-table":
            continue
        if cohort.get("demo") and demo_plan is not None:
            found = discover_demo(cohort, demo_plan)
        else:
            found = DISCOVER[cohort["layout"]](cohort)
        usable, bad = usable_entries(cohort, found)
        refused += bad
        for r in usable:
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
                    "study_day": r.get("study_day"),
                }
            )
    df = pd.DataFrame(rows, columns=SUBJECT_COLUMNS + EXTRA_COLUMNS)
    table = df.set_index(["cohort", "subject", "session"], drop=False).sort_index()
    bad = pd.DataFrame(refused, columns=REFUSED_COLUMNS)
    return table, bad.sort_values(["cohort", "raw_subject", "raw_session"]).reset_index(drop=True)


def log_refused(refused: pd.DataFrame) -> None:
    """One warning per entry left out for an unusable ID (the run goes on without it)."""
    for reason in refused["reason"]:
        log.warning("subject left out: %s", reason)


def build_subject_table(cohorts: list[dict], demo_plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """The subject table of `discover_subjects`; each refused entry is logged as a warning."""
    table, refused = discover_subjects(cohorts, demo_plan)
    log_refused(refused)
    return table
