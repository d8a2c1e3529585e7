"""Intake IDs (parse time): one ID rule for all layouts, refused IDs, no dates in sessions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import yaml
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from radiogenomics.demo import dicom_export
from radiogenomics.demo.generate import study_date
from radiogenomics.intake.discover import (
    REFUSED_COLUMNS,
    build_subject_table,
    date_in_name,
    discover_dicom,
    discover_subjects,
    safe_id,
)
from radiogenomics.intake.report import intake_report

WILDCARD = re.compile(r"[A-Za-z0-9]+")  # the Snakefile's subject/session constraints
BIDS_FILES = ("T1w", "ce-gadolinium_T1w", "T2w", "FLAIR")
BASE = {
    "role": "discovery",
    "segmentation": "automated",
    "label_convention": "brats",
    "skull_stripped": "auto",
    "session": "01",
}


def bids_cohort(root: Path, name: str = "bids_site") -> dict:
    suffixes = dict(zip(("t1", "t1ce", "t2", "flair"), BIDS_FILES, strict=True))
    return {"name": name, "layout": "bids", "path": str(root), "bids_suffixes": suffixes, **BASE}


def make_bids(root: Path, folders: list[tuple[str, str | None]]) -> Path:
    """Zero-byte BIDS files for (subject folder, session folder or None)."""
    for sub, ses in folders:
        d = root / sub / ses / "anat" if ses else root / sub / "anat"
        d.mkdir(parents=True, exist_ok=True)
        for suffix in BIDS_FILES:
            (d / f"{sub}{'_' + ses if ses else ''}_{suffix}.nii.gz").touch()
    return root


def test_one_id_rule_for_every_layout(tmp_path):
    assert safe_id("TCGA-DU-7294") == "TCGADU7294"
    assert safe_id("A 1") == "A1" and safe_id("ü2") == "u2" and safe_id("<b>") == "b"
    assert safe_id("---") == "" and safe_id("../../..") == ""
    bids = make_bids(
        tmp_path / "bids",
        [("sub-A 1", "ses-<b>"), ("sub-ü2", "ses-01"), ("sub-C3", None)],
    )
    brats = tmp_path / "brats"
    for name in ("TCGA-DU-7294", "x y"):
        (brats / name).mkdir(parents=True)
    table = tmp_path / "scans.tsv"
    table.write_bytes("subject\tsession\tsequence\tpath\nMüller-7\tpré\tt1\tt1.nii.gz\n".encode(
        "latin-1"))  # fmt: skip
    cohorts = [
        bids_cohort(bids),
        {"name": "brats_site", "layout": "brats", "path": str(brats), "patterns": {}, **BASE},
        {"name": "tab", "layout": "nifti-table", "table": str(table), **BASE},
    ]
    subjects, refused = discover_subjects(cohorts)
    assert refused.empty
    got = sorted(zip(subjects.cohort, subjects.subject, subjects.session, strict=True))
    assert got == [
        ("bids_site", "A1", "b"), ("bids_site", "C3", "01"), ("bids_site", "u2", "01"),
        ("brats_site", "TCGADU7294", "01"), ("brats_site", "xy", "01"), ("tab", "Muller7", "pre"),
    ]  # fmt: skip
    assert all(WILDCARD.fullmatch(v) for v in [*subjects.subject, *subjects.session])


def test_unusable_ids_are_refused_without_blocking_anyone(tmp_path):
    bids = make_bids(
        tmp_path / "bids",
        [("sub----", "ses-01"), ("sub-A1", "ses-01"), ("sub-B2", "ses-__"), ("sub-C_3", None),
         ("sub-C3", None)],
    )  # fmt: skip
    table = tmp_path / "scans.tsv"
    pd.DataFrame(
        {
            "subject": ["../../..", "", "S1"],
            "session": ["01", "01", "01"],
            "sequence": ["t1", "t1", "t1"],
            "path": ["a.nii.gz", "b.nii.gz", "c.nii.gz"],
        }
    ).to_csv(table, sep="\t", index=False)
    good = make_bids(tmp_path / "good", [("sub-G1", "ses-01")])
    cohorts = [
        bids_cohort(bids),
        {"name": "tab", "layout": "nifti-table", "table": str(table), **BASE},
        bids_cohort(good, "other"),
    ]
    subjects, refused = discover_subjects(cohorts)
    assert list(refused.columns) == REFUSED_COLUMNS
    assert sorted(zip(subjects.cohort, subjects.subject, subjects.session, strict=True)) == [
        ("bids_site", "A1", "01"), ("other", "G1", "01"), ("tab", "S1", "01")
    ]  # fmt: skip
    reasons = dict(zip(zip(refused.cohort, refused.raw_subject, strict=True), refused.reason,
                       strict=True))  # fmt: skip
    assert set(reasons) == {("bids_site", "---"), ("bids_site", "B2"), ("bids_site", "C_3"),
                            ("bids_site", "C3"), ("tab", "../../.."), ("tab", "")}  # fmt: skip
    msg = reasons[("bids_site", "---")]
    assert "cohort 'bids_site' (layout bids)" in msg and "subject ID '---'" in msg
    assert "session ID '__'" in reasons[("bids_site", "B2")]
    assert "'../../..'" in reasons[("tab", "../../..")] and "nifti-table" in reasons[("tab", "")]
    # Two folders that sanitise alike: neither is guessed, both are named.
    assert "['C3/01', 'C_3/01'] all become C3/01" in reasons[("bids_site", "C3")]
    # build_subject_table (what the Snakefile calls) leaves them out the same way.
    assert build_subject_table(cohorts).equals(subjects)
    # The intake report lists each refused entry under its raw ID, with the reason.
    rep, _ = intake_report([], {}, refused=refused)
    assert (rep.status == "refused_id").sum() == 6
    row = rep[rep.subject == "---"].iloc[0]
    assert row.cohort == "bids_site" and row.message == msg


def test_dry_run_is_not_blocked_by_an_unusable_id(tmp_path):
    """Before: `MissingInputException in rule intake_report ... sub-/ses-01` for every cohort."""
    bids = make_bids(tmp_path / "bids", [("sub----", "ses-01"), ("sub-A1", "ses-01")])
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"cohorts": [bids_cohort(bids)]}))
    project = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "-n",
            "results/qc/intake_report.tsv",
            "--snakefile",
            str(project / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(cfg),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "sub-A1/ses-01" in out and "sub-/" not in out and "MissingInput" not in out
    assert "subject ID '---'" in out  # the warning names the raw ID


def _study(folder: Path, date: str | None, n_files: int = 2) -> None:
    """A header-only DICOM series (no pixels: discovery reads headers only)."""
    series = folder / "01_ax_t1_pre"
    series.mkdir(parents=True)
    for i in range(n_files):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientID = "P1"
        if date:
            ds.StudyDate, ds.StudyTime = date, "093000"
        pydicom.dcmwrite(series / f"IM{i:04d}.dcm", ds, enforce_file_format=True)


def test_dicom_sessions_are_ordinal_in_study_date_order(tmp_path):
    root = tmp_path / "dicom"
    # Folder names out of date order, one of them the date itself.
    _study(root / "P-1" / "2019-10-07", "20191007")
    _study(root / "P-1" / "1.3.6.1.4.1.9328.50.45.123", "20190301")
    _study(root / "P-1" / "zz-followup", "20200105")
    (root / "P-1" / "2019-10-07" / "README.txt").write_text("not dicom")
    cohort = {"name": "tcia", "layout": "tcia-dicom", "path": str(root), **BASE}
    rows = discover_dicom(cohort)
    got = [(r["subject"], r["session"], Path(r["source_dir"]).name, r["study_day"]) for r in rows]
    assert got == [
        ("P1", "01", "1.3.6.1.4.1.9328.50.45.123", None),
        ("P1", "02", "2019-10-07", None),
        ("P1", "03", "zz-followup", None),
    ]
    rows = discover_dicom(cohort | {"session_day_offset": True})
    assert [r["study_day"] for r in rows] == [0, 220, 310]
    subjects, _ = discover_subjects([cohort])
    assert list(subjects.session) == ["01", "02", "03"]
    assert not any("2019" in s for s in subjects.session)


def test_dicom_without_headers_uses_dates_in_names_then_names(tmp_path):
    root = tmp_path / "dicom"
    for name in ("06-28-1998-MRI BRAIN-54321", "01-05-1997-MRI BRAIN-12345"):
        (root / "P1" / name / "series").mkdir(parents=True)
        (root / "P1" / name / "series" / "notes.txt").write_text("no DICOM here")
    cohort = {"name": "tcia", "layout": "tcia-dicom", "path": str(root), **BASE}
    rows = discover_dicom(cohort | {"session_day_offset": True})
    assert [(r["session"], Path(r["source_dir"]).name[:10], r["study_day"]) for r in rows] == [
        ("01", "01-05-1997", 0), ("02", "06-28-1998", 539)
    ]  # fmt: skip
    # One study without any date: no partial date order is guessed, folder names decide.
    (root / "P1" / "aaa" / "s").mkdir(parents=True)
    rows = discover_dicom(cohort | {"session_day_offset": True})
    assert [Path(r["source_dir"]).name[:5] for r in rows] == ["01-05", "06-28", "aaa"]
    assert [r["study_day"] for r in rows] == [None, None, None]
    assert date_in_name("2019-10-07") == date_in_name("20191007") == date_in_name("10-07-2019")
    assert date_in_name("1.3.6.1.4.1.9328") is None and date_in_name("20191399") is None


def test_demo_b_sessions_keep_their_ids(tmp_path):
    """demo_b's study folders are 01 and 02 (02 dated 120 days later): sessions stay 01, 02."""
    root = tmp_path / "demo"
    seed = 20241125
    for session in ("01", "02"):
        folder = root / "demo_b" / "B001" / session / dicom_export.series_dirname("t1")
        dicom_export.write_series(
            np.arange(2 * 2 * 2, dtype=float).reshape(2, 2, 2),
            np.eye(4),
            "t1",
            folder,
            subject="B001",
            session=session,
            study_uid=generate_uid(),
            frame_uid=generate_uid(),
            uid_seed=f"{seed}/{session}",
            study_date=study_date("B001", session, seed),
            scanner={"manufacturer": "GE", "model": "Signa", "field": 1.5},
        )
    cohort = {"name": "demo_b", "layout": "tcia-dicom", "path": str(root / "demo_b"), **BASE}
    rows = discover_dicom(cohort | {"session_day_offset": True})
    assert [(r["subject"], r["session"], Path(r["source_dir"]).name) for r in rows] == [
        ("B001", "01", "01"), ("B001", "02", "02")
    ]  # fmt: skip
    assert [r["study_day"] for r in rows] == [0, 120]
