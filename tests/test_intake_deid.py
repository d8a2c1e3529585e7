"""Intake de-identification: values of kept sidecar fields are scanned for PHI, not just keys."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from radiogenomics.demo import dicom_export
from radiogenomics.intake.deid import clean_sidecar, identifying_terms, phi_in_text
from radiogenomics.intake.dicom import convert_session
from radiogenomics.intake.nifti import sidecar_for

SCANNER = {"manufacturer": "GE MEDICAL SYSTEMS", "model": "Signa HDxt", "field": 1.5}
RULES = {"t1": {"include": "T1"}}


def _demo_series(root: Path, **tags) -> Path:
    """One demo_b-style T1 series (the demo's own fake PHI in its headers) plus `tags`."""
    folder = root / "B001" / "01" / dicom_export.series_dirname("t1")
    rng = np.random.default_rng(0)
    dicom_export.write_series(
        rng.uniform(0, 100, (24, 20, 6)),
        np.diag([2.0, 2.0, 3.0, 1.0]),
        "t1",
        folder,
        subject="B001",
        session="01",
        study_uid=generate_uid(entropy_srcs=["study"]),
        frame_uid=generate_uid(entropy_srcs=["frame"]),
        uid_seed="deid-test",
        study_date="20190311",
        scanner=SCANNER,
    )
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(f)
    return folder.parent


def _all_phi() -> list[str]:
    phi = dicom_export.phi_strings([("B001", "01")])
    # Each part of a person's name on its own too (FAKEPHI^JANE -> JANE).
    parts = {p for s in phi for p in s.replace("^", " ").split() if len(p) >= 3}
    return sorted(set(phi) | parts | {"20190311", "2019-03-11", "19610203"})


def test_crafted_sidecar_values_are_scanned():
    meta = {
        "PatientName": "DOE^JOHN",
        "InstitutionName": "SIEMENS ERLANGEN",
        "ReferringPhysicianName": "SMITH^ANNA^DR",
        "Manufacturer": "SIEMENS",  # part of the site's name, not a person: kept
        "ManufacturersModelName": "Prisma",
        "ReceiveCoilName": "Head_32 doe",  # the patient's family name
        "SoftwareVersions": "syngo MR E11 (Anna's build)",  # a part of the physician's name
        "ScanOptions": "PFP/FS scanned 03/11/2019",
        "SequenceName": "tfl3d1_16ns",
        "BodyPartExamined": "BRAIN MRN 7788",
        "ImageType": ["ORIGINAL", "PRIMARY", "SIEMENS ERLANGEN"],
        "ConversionSoftwareVersion": "v1.0.20240202",  # dcm2niix's version, not a date
        "EchoTime": 0.00235,
        "FlipAngle": 8,
    }
    out = clean_sidecar(meta)
    assert out == {
        "Manufacturer": "SIEMENS",
        "ManufacturersModelName": "Prisma",
        "SequenceName": "tfl3d1_16ns",
        "ConversionSoftwareVersion": "v1.0.20240202",
        "EchoTime": 0.00235,
        "FlipAngle": 8,
        "deid_removed": [
            "BodyPartExamined", "ImageType", "ReceiveCoilName", "ScanOptions", "SoftwareVersions"
        ],
    }  # fmt: skip
    # Terms from another header (the DICOM the sidecar came from) count the same way.
    assert clean_sidecar({"ReceiveCoilName": "8HRBRAIN"}, {"8HRBRAIN"}) == {
        "deid_removed": ["ReceiveCoilName"]
    }
    assert clean_sidecar({"ReceiveCoilName": "8HRBRAIN"}) == {"ReceiveCoilName": "8HRBRAIN"}


@pytest.mark.parametrize(
    "text,found",
    [
        ("built 2019-03-11", "2019-03-11"),
        ("11.03.2019", "11.03.2019"),
        ("20190311", "20190311"),
        ("id 123-45-6789", "123-45-6789"),
        ("DOB: 1 Jan", "DOB"),
        ("mail jane@example.org", "jane@example.org"),
        ("syngo MR E11", None),
        ("DV26.0_R02_1831.a", None),
        ("27\\LX\\MR Software release:RX27.0_R02", None),
        ("2.25.123456789", None),
    ],
)
def test_phi_patterns(text, found):
    assert phi_in_text(text, ()) == found


def test_bids_sidecar_values_are_cleaned(tmp_path):
    img = tmp_path / "sub-A1_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), img)
    side = {
        "PatientName": "FAKEPHI^JANE",
        "InstitutionName": "FAKEPHI GENERAL HOSPITAL",
        "ReceiveCoilName": "HEAD jane",
        "SoftwareVersions": "FAKEPHI GENERAL HOSPITAL build",
        "RepetitionTime": 2.3,
    }
    (tmp_path / "sub-A1_T1w.json").write_text(json.dumps(side))
    out = sidecar_for(img)
    assert out == {
        "RepetitionTime": 2.3,
        "deid_removed": ["ReceiveCoilName", "SoftwareVersions"],
    }


def test_dicom_sidecar_drops_kept_fields_carrying_the_headers_phi(tmp_path):
    """The demo's fake PHI, repeated inside fields the whitelist keeps, never reaches a sidecar."""
    phi = dicom_export.PHI
    study = _demo_series(
        tmp_path,
        ReceiveCoilName=f"HEAD {phi['PatientName'].split('^')[1]} 8CH",
        SoftwareVersions=f"DV26 {phi['InstitutionName']}",
        ScanOptions=f"FS {phi['OtherPatientIDs']}",
        InstitutionAddress="1 FAKEPHI ROAD SPRINGFIELD",
    )
    images, _ = convert_session(study, RULES, ["t1"])
    meta = images["t1"][1]
    # (dcm2niix writes a GE coil name as CoilString, which the whitelist never keeps.)
    assert meta["deid_removed"] == ["ScanOptions", "SoftwareVersions"]
    assert "CoilString" not in meta and "ReceiveCoilName" not in meta
    assert meta["Manufacturer"] == "GE" and meta["EchoTime"] == 0.01
    text = json.dumps(meta).lower()
    for s in _all_phi():
        assert s.lower() not in text, s


def test_demo_sidecar_without_phi_in_kept_fields_is_unchanged(tmp_path):
    """demo_b's own series: nothing removed, so its sidecars keep their bytes."""
    images, _ = convert_session(_demo_series(tmp_path), RULES, ["t1"])
    meta = images["t1"][1]
    assert "deid_removed" not in meta
    text = json.dumps(meta).lower()
    for s in _all_phi():
        assert s.lower() not in text, s
    assert set(meta) >= {"Manufacturer", "EchoTime", "RepetitionTime", "ImageType"}


def test_identifying_terms_from_a_dicom_header():
    ds = pydicom.Dataset()
    ds.PatientName = "FAKEPHI^JANE"
    ds.OtherPatientIDs = ["FAKEPHI-MRN-778812", "X9"]
    ds.InstitutionName = "FAKEPHI GENERAL HOSPITAL"
    ds.ReferringPhysicianName = "FAKEPHI^REFERRER^DR"
    assert identifying_terms(ds) == {
        "FAKEPHI^JANE", "FAKEPHI", "JANE", "FAKEPHI-MRN-778812", "FAKEPHI GENERAL HOSPITAL",
        "FAKEPHI^REFERRER^DR", "REFERRER",
    }  # fmt: skip
