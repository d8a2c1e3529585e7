"""Intake stage: layouts, DICOM conversion vs IBSI's own NIfTI, de-identification, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.intake.dicom import assign_series, convert_session, match_sequence, scan_series
from radiogenomics.intake.discover import build_subject_table
from radiogenomics.intake.report import intake_report, validate_cohort_labels
from radiogenomics.intake.session import intake_session

SEQS = {
    "structural": ["t1", "t1ce", "t2", "flair"],
    "required": ["t1", "t1ce", "t2", "flair"],
    "optional_maps": ["adc", "rcbv"],
}
DEFAULT_RULES = {
    "flair": {"include": "FLAIR"},
    "adc": {"include": "ADC|APPARENT"},
    "rcbv": {"include": "CBV"},
    "t1ce": {"include": r"T1.*(POST|GAD|\+C|CE\b|CONTRAST)"},
    "t1": {"include": "T1", "exclude": r"POST|GAD|\+C|CONTRAST"},
    "t2": {"include": "T2", "exclude": r"FLAIR|\*|STAR|SWI"},
}
PHI = ["FAKEPHI^JOHN", "19500101", "FAKEPHI MEMORIAL HOSPITAL", "FAKEPHI REFERRER", "FAKEPHIACC42"]


def brats_cohort(path: Path, **extra) -> dict:
    base = {
        "name": "tcga",
        "layout": "brats",
        "path": str(path),
        "role": "discovery",
        "site": "tcga",
        "scanner": "",
        "segmentation": "provided",
        "label_convention": "brats",
        "skull_stripped": True,
        "session": "01",
        "patterns": {
            "t1": "t1.nii.gz",
            "t1ce": "t1ce.nii.gz",
            "t2": "t2.nii.gz",
            "flair": "flair.nii.gz",
            "labels": "segmentations/fusion_simple.nii.gz",
        },
    }
    return base | extra


def run_intake(cohort: dict, out: Path) -> list[dict]:
    table = build_subject_table([cohort])
    manifests = []
    for _, row in table.iterrows():
        sd = out / row.cohort / f"sub-{row.subject}" / f"ses-{row.session}" / "anat"
        manifests.append(intake_session(cohort, row.to_dict(), SEQS, sd))
    return manifests


def test_brats_layout_reorients_to_ras_exactly(shared_data, tmp_path):
    src = shared_data / "mri" / "tcga_lgg_brats_space"
    manifests = run_intake(brats_cohort(src), tmp_path)
    assert sorted(m["subject"] for m in manifests) == ["TCGADU7294", "TCGAFG6692"]
    sd = tmp_path / "tcga" / "sub-TCGAFG6692" / "ses-01" / "anat"
    out = nib.load(sd / "t1ce.nii.gz")
    ref = nib.as_closest_canonical(nib.load(src / "TCGA-FG-6692" / "t1ce.nii.gz"))
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    np.testing.assert_allclose(out.affine, ref.affine, atol=1e-6)
    np.testing.assert_allclose(out.get_qform(), out.get_sform(), atol=1e-6)
    assert int(out.header["sform_code"]) == 1 and int(out.header["qform_code"]) == 1
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), np.asanyarray(ref.dataobj))
    labels = np.asanyarray(nib.load(sd / "provided_labels.nii.gz").dataobj)
    assert set(np.unique(labels)) == {0, 1, 2, 4}  # raw values; segmentation maps 4 -> 3
    assert (labels == 4).sum() == 6840  # count from the data README
    man = json.loads((sd / "manifest.json").read_text())
    assert set(man["sequences"]) == {"t1", "t1ce", "t2", "flair"} and set(man["missing"]) == {
        "adc",
        "rcbv",
    }


def test_dicom_conversion_matches_ibsi_reference(shared_data):
    series_dir = shared_data / "dicom" / "ibsi_sts001_mr_t1" / "dicom_image"
    images, _ = convert_session(series_dir, {"t1": {"include": ".*"}}, ["t1"])
    img, meta = images["t1"]
    ours = nib.as_closest_canonical(img)
    ref = nib.as_closest_canonical(
        nib.load(
            shared_data / "dicom" / "ibsi_sts001_mr_t1" / "nifti_reference" / "MR_T1_image.nii.gz"
        )
    )
    assert ours.shape == ref.shape == (174, 158, 59)
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)
    np.testing.assert_allclose(ours.get_fdata(), ref.get_fdata(), atol=1e-3)
    assert abs(ours.get_fdata().mean() - 348.35) < 0.01  # value from the data README
    assert meta["Manufacturer"] == "Siemens" and "PatientName" not in meta


def test_dicom_real_epi_series_geometry(shared_data):
    series = scan_series(shared_data / "dicom" / "ge_epi_brain" / "series")
    assert len(series) == 1 and len(series[0].files) == 37
    images, _ = convert_session(
        shared_data / "dicom" / "ge_epi_brain" / "series", {"t2": {"include": "Zugfahrt"}}, ["t2"]
    )
    img = nib.as_closest_canonical(images["t2"][0])
    assert img.shape == (64, 64, 37)
    np.testing.assert_allclose(img.header.get_zooms()[:3], (3.4375, 3.4375, 3.8), atol=1e-3)


def test_series_rules_map_typical_descriptions():
    cases = {
        "AX T1 PRE": "t1",
        "AX T1 POST GAD": "t1ce",
        "AX T2 FSE": "t2",
        "AX T2 FLAIR": "flair",
        "ADC MAP": "adc",
        "rCBV MAP": "rcbv",
        "T1 MPRAGE +C": "t1ce",
        "LOCALIZER": None,
    }
    for desc, seq in cases.items():
        assert match_sequence(desc, DEFAULT_RULES) == seq, desc


def _fake_session(shared_data: Path, dest: Path, *, non_image_flair: bool = False) -> Path:
    """Four series from the real IBSI MR slices, relabelled, with fake PHI in the headers."""
    src = sorted((shared_data / "dicom" / "ibsi_sts001_mr_t1" / "dicom_image").glob("*.dcm"))
    descs = {1: "AX T1 PRE", 2: "AX T1 POST GAD", 3: "AX T2 FSE", 4: "AX T2 FLAIR"}
    for num, desc in descs.items():
        sdir = dest / f"{num:02d}"
        sdir.mkdir(parents=True)
        uid = pydicom.uid.generate_uid(entropy_srcs=[desc])
        for i, f in enumerate(src):
            ds = pydicom.dcmread(f)
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = uid, num, desc
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[desc, str(i)])
            ds.PatientName, ds.PatientBirthDate, ds.InstitutionName = PHI[0], PHI[1], PHI[2]
            ds.ReferringPhysicianName, ds.AccessionNumber = PHI[3], PHI[4]
            if non_image_flair and num == 4:
                del ds.PixelData
                ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
                del ds.Rows
                del ds.Columns
            ds.save_as(sdir / f"IM{i:04d}.dcm")
    return dest


def test_dicom_session_is_deidentified(shared_data, tmp_path):
    root = tmp_path / "dicom_cohort"
    _fake_session(shared_data, root / "P001" / "01")
    cohort = {
        "name": "dcm",
        "layout": "tcia-dicom",
        "path": str(root),
        "role": "validation",
        "segmentation": "automated",
        "label_convention": "brats",
        "skull_stripped": "auto",
        "session": "01",
        "series_rules": DEFAULT_RULES,
    }
    out = tmp_path / "results"
    run_intake(cohort, out)
    anat = out / "dcm" / "sub-P001" / "ses-01" / "anat"
    assert {p.name for p in anat.glob("*.nii.gz")} == {
        "t1.nii.gz",
        "t1ce.nii.gz",
        "t2.nii.gz",
        "flair.nii.gz",
    }
    for path in out.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            blob = gzip.decompress(raw) if path.suffix == ".gz" else raw
            for phi in PHI:
                assert phi.encode() not in blob, f"{phi} found in {path}"
                assert phi.split("^")[0].encode() not in blob, f"{phi} found in {path}"


def test_dicom_non_image_series_names_file(shared_data, tmp_path):
    root = tmp_path / "dicom_cohort"
    _fake_session(shared_data, root / "P002" / "01", non_image_flair=True)
    series = scan_series(root / "P002" / "01")
    chosen, notes = assign_series(series, DEFAULT_RULES)
    assert "flair" not in chosen and "not an image" in notes["flair"]
    with pytest.raises(SubjectError) as err:
        convert_session(root / "P002" / "01", DEFAULT_RULES, SEQS["required"])
    msg = str(err.value)
    assert "flair" in msg and "not an image" in msg and "IM0000.dcm" in msg


def _nifti_table_cohort(tmp_path: Path, shared_data: Path) -> dict:
    src = shared_data / "mri" / "tcga_lgg_brats_space" / "TCGA-DU-7294"
    rows = [
        {"subject": "S1", "session": "01", "sequence": s, "path": str(src / f"{s}.nii.gz")}
        for s in SEQS["required"]
    ]
    table = tmp_path / "images.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    return {
        "name": "tab",
        "layout": "nifti-table",
        "table": str(table),
        "role": "discovery",
        "segmentation": "automated",
        "label_convention": "brats",
        "skull_stripped": True,
        "session": "01",
    }


def test_nifti_table_layout(shared_data, tmp_path):
    manifests = run_intake(_nifti_table_cohort(tmp_path, shared_data), tmp_path / "out")
    assert manifests[0]["subject"] == "S1" and len(manifests[0]["sequences"]) == 4


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing"])
def test_bad_nifti_names_the_file(shared_data, tmp_path, damage):
    cohort = _nifti_table_cohort(tmp_path, shared_data)
    table = pd.read_csv(cohort["table"], sep="\t")
    bad = tmp_path / "flair.nii.gz"
    good = Path(table.loc[table.sequence == "flair", "path"].iloc[0])
    if damage == "corrupt":
        bad.write_bytes(b"this is not a nifti file at all" * 10)
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[:20000])
    if damage == "missing":
        table = table[table.sequence != "flair"]
    else:
        table.loc[table.sequence == "flair", "path"] = str(bad)
    table.to_csv(cohort["table"], sep="\t", index=False)
    with pytest.raises(SubjectError) as err:
        run_intake(cohort, tmp_path / "out")
    msg = str(err.value)
    assert "flair" in msg
    if damage != "missing":
        assert str(bad) in msg


def test_labels_validation_reports_rows_and_keeps_good_rows(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text(
        "subject\tidh\tmgmt\tos_days\nA1\tmutant\tmethylated\t300\nA2\tmutated\t\t200\n"
        "A3\twildtype\tunmethylated\t100\nA3\twildtype\tunmethylated\t90\n"
    )
    clean, issues = validate_cohort_labels("c", str(labels), {}, ["A1", "A2", "A3"])
    # A2's bad idh cell is dropped, its os_days kept; A3 (duplicated) is dropped entirely.
    assert list(clean.subject) == ["A1", "A2"]
    assert pd.isna(clean.idh[1]) and clean.os_days[1] == 200
    by_row = {int(r.row): r for r in issues.itertuples()}
    assert by_row[3].column == "idh" and "mutated" in by_row[3].value
    assert "duplicate" in by_row[5].message


def test_empty_labels_file_is_a_clear_issue(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("")
    clean, issues = validate_cohort_labels("c", str(labels), {}, ["A1"])
    assert clean.empty and "empty" in issues.iloc[0].message and str(labels) == issues.iloc[0].file


def test_intake_report_lists_both_directions(tmp_path):
    sd = tmp_path / "results" / "c" / "sub-A1" / "ses-01" / "anat"
    sd.mkdir(parents=True)
    (sd / "manifest.json").write_text(json.dumps({"sequences": {"t1": "t1.nii.gz"}, "missing": {}}))
    labels = tmp_path / "labels.tsv"
    labels.write_text("subject\tidh\nB9\tmutant\nB8\twildtype\n")
    rep, unmatched = intake_report(
        [str(sd / "manifest.json")], {"c": str(labels)}, {"ft": ["F1"]}, {"c": str(labels)}
    )
    status = dict(zip(rep.subject, rep.status, strict=True))
    # Labels rows without images: one summary row per cohort, the subjects in their own table.
    assert status == {
        "": "labels_without_images",
        "A1": "images_without_labels",
        "F1": "features_without_labels",
    }
    summary = rep[rep.status == "labels_without_images"].iloc[0]
    assert summary["n_subjects"] == 2 and "2 subject(s)" in summary["message"]
    assert unmatched[["cohort", "subject"]].values.tolist() == [["c", "B8"], ["c", "B9"]]
    assert (unmatched["labels_file"] == str(labels)).all()


def test_required_sequences_are_per_cohort_and_every_present_sequence_is_used(
    shared_data, tmp_path
):
    src = shared_data / "mri" / "tcga_lgg_brats_space"
    flair_t1ce = {"t1ce": "t1ce.nii.gz", "flair": "flair.nii.gz"}
    two = brats_cohort(src, name="two", segmentation="automated", patterns=flair_t1ce)
    # The global list (all four) fails a FLAIR + T1c cohort, naming the sequence it lacks.
    with pytest.raises(SubjectError, match="required sequence t1 not found"):
        run_intake(two, tmp_path / "global")
    # Its own list lets it through with the two sequences it has.
    manifests = run_intake(two | {"required_sequences": ["t1ce", "flair"]}, tmp_path / "own")
    assert [sorted(m["sequences"]) for m in manifests] == [["flair", "t1ce"]] * 2
    # A four-sequence cohort that requires only two still keeps all four.
    four = brats_cohort(src, name="four", required_sequences=["t1ce", "flair"])
    manifests = run_intake(four, tmp_path / "four")
    assert [sorted(m["sequences"]) for m in manifests] == [["flair", "t1", "t1ce", "t2"]] * 2
