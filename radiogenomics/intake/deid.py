"""Intake stage: de-identification of sidecars and NIfTI headers (whitelists, never blacklists)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import nibabel as nib
import numpy as np

# Acquisition fields a radiomics study needs; everything else (names, dates, institutions,
# free-text descriptions, UIDs) is dropped because any of it may carry PHI.
SIDECAR_WHITELIST = {
    "Modality",
    "MagneticFieldStrength",
    "Manufacturer",
    "ManufacturersModelName",
    "ImagingFrequency",
    "MRAcquisitionType",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "SequenceName",
    "SliceThickness",
    "SpacingBetweenSlices",
    "EchoTime",
    "RepetitionTime",
    "InversionTime",
    "FlipAngle",
    "PixelBandwidth",
    "PhaseEncodingDirection",
    "ReceiveCoilName",
    "PercentPhaseFOV",
    "AcquisitionMatrixPE",
    "ReconMatrixPE",
    "EchoTrainLength",
    "SoftwareVersions",
    "ConversionSoftware",
    "ConversionSoftwareVersion",
    "BodyPartExamined",
    "ImageType",
    # Timing of raw acquisitions (DSC, DCE) that their maps are computed from; b-values and
    # vectors travel in .bval/.bvec files beside the image.
    "EchoNumber",
    "SliceTiming",
    "TemporalResolution",
    "RepetitionTimeExcitation",
    "NumberOfVolumesDiscardedByScanner",
    "EffectiveEchoSpacing",
    "TotalReadoutTime",
    "MultibandAccelerationFactor",
    "DiffusionScheme",
    "ContrastBolusIngredient",
    "RepetitionTimeSource",
}


# Header fields whose values name or identify the patient, staff or site. Their values are
# searched for in every kept field: free text (coil names, software strings) can repeat them.
IDENTIFYING_FIELDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientBirthDate",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "PhysiciansOfRecord",
)
# Person names: each part counts on its own (a coil named after a family name is enough).
# Site names count only whole ("SIEMENS ERLANGEN" must not remove Manufacturer "SIEMENS").
PERSON_NAME_FIELDS = {
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "PhysiciansOfRecord",
}
# Parts of names shorter than this (initials, "DR") would match ordinary words.
MIN_TERM_LENGTH = 3
# Identifiers in any free text: dates (YYYYMMDD, YYYY-MM-DD, DD.MM.YYYY, MM/DD/YYYY, ...), medical
# record and social security numbers, e-mail addresses.
_DAY, _MONTH, _YEAR = r"(0?[1-9]|[12]\d|3[01])", r"(0?[1-9]|1[0-2])", r"(19|20)\d{2}"
PHI_PATTERNS = (
    re.compile(rf"(?<!\d){_YEAR}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)"),
    re.compile(rf"(?<!\d){_YEAR}[-/.]{_MONTH}[-/.]{_DAY}(?!\d)"),
    re.compile(rf"(?<!\d){_DAY}[-/.]{_MONTH}[-/.]{_YEAR}(?!\d)"),
    re.compile(rf"(?<!\d){_MONTH}[-/.]{_DAY}[-/.]{_YEAR}(?!\d)"),
    re.compile(r"\b(MRN|SSN|DOB)\b", re.IGNORECASE),
    re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
)
# Written by the converter, not the site: dcm2niix's version is "v1.0.20240202".
NO_PATTERN_SCAN = {"ConversionSoftware", "ConversionSoftwareVersion"}


def _texts(value: Any) -> list[str]:
    """Every string inside a sidecar value (lists and nested dicts included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


def identifying_terms(fields: Mapping[str, Any] | Any) -> set[str]:
    """Identifying strings of a header: each field's whole value and each part of a person's
    name (`^`-separated, or words), from a dict (sidecar) or a pydicom dataset."""
    terms: set[str] = set()
    for key in IDENTIFYING_FIELDS:
        value = fields.get(key) if isinstance(fields, Mapping) else getattr(fields, key, None)
        if value is None:
            continue
        # pydicom's MultiValue is a Sequence; a PersonName or str is one value.
        many = isinstance(value, Sequence) and not isinstance(value, str | bytes)
        values = list(value) if many else [value]
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            terms.add(text)
            if key in PERSON_NAME_FIELDS:
                terms |= {p for p in re.split(r"[\^\s,]+", text) if p}
    return {t for t in terms if len(t) >= MIN_TERM_LENGTH}


def phi_in_text(text: str, terms: Iterable[str], patterns: bool = True) -> str | None:
    """The first identifying term (whole word, any case) or PHI pattern found in `text`."""
    for term in sorted(terms, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE):
            return term
    if patterns:
        for pattern in PHI_PATTERNS:
            match = pattern.search(text)
            if match:
                return match.group(0)
    return None


def clean_sidecar(meta: dict, phi_terms: Iterable[str] = ()) -> dict:
    """Whitelisted acquisition fields whose values carry no PHI.

    A kept field is dropped when any string in it contains an identifying value of this header
    (`phi_terms`, e.g. from the DICOM, plus the sidecar's own PatientName, InstitutionName...)
    or a date, record number or e-mail; the dropped field names are listed in `deid_removed`."""
    terms = set(phi_terms) | identifying_terms(meta)
    out, removed = {}, []
    for key, value in meta.items():
        if key not in SIDECAR_WHITELIST:
            continue
        scan = key not in NO_PATTERN_SCAN
        if any(phi_in_text(t, terms, patterns=scan) for t in _texts(value)):
            removed.append(key)
            continue
        out[key] = value
    if removed:
        out["deid_removed"] = sorted(removed)
    return out


def clean_header(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """A fresh header: geometry and data type kept, free-text fields emptied."""
    data = np.asanyarray(img.dataobj)  # applies any scl_slope/inter, so values are physical
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(data.dtype)
    out = nib.Nifti1Image(data, img.affine, hdr)
    out.set_qform(img.affine, code=1)
    out.set_sform(img.affine, code=1)
    out.header.set_xyzt_units("mm", "sec")
    for field in ("descrip", "aux_file", "intent_name", "db_name"):
        if field in out.header:
            out.header[field] = b""
    return out
