"""Demo cohort generator (foundation stage): TCIA-style DICOM series with fake PHI (site B).

One axial series per sequence, uint16 pixels with RescaleSlope/Intercept, geometry tags
(ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) exact, so dcm2niix
rebuilds the NIfTI grid of the truth. Headers carry fake PHI that intake must remove.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

SERIES = {
    # seq: (SeriesNumber, SeriesDescription, TR ms, TE ms, TI ms, image type)
    "t1": (1, "AX T1 PRE", 550.0, 10.0, None, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    "t1ce": (2, "AX T1 POST GAD", 550.0, 10.0, None, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    "t2": (3, "AX T2 FSE", 4500.0, 100.0, None, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    "flair": (4, "AX T2 FLAIR", 9000.0, 120.0, 2500.0, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    "adc": (5, "ADC MAP", 6000.0, 80.0, None, ["DERIVED", "PRIMARY", "ADC", "ADC"]),
    "rcbv": (6, "rCBV MAP", 1500.0, 30.0, None, ["DERIVED", "SECONDARY", "PERFUSION", "RCBV"]),
}
PHI = {
    "PatientName": "FAKEPHI^JANE",
    "PatientBirthDate": "19610203",
    "InstitutionName": "FAKEPHI GENERAL HOSPITAL",
    "ReferringPhysicianName": "FAKEPHI^REFERRER^DR",
    "PatientAddress": "1 FAKEPHI ROAD SPRINGFIELD",
    "OtherPatientIDs": "FAKEPHI-MRN-778812",
}
FREE_TEXT_PHI = "scanned for FAKEPHI^JANE, MRN FAKEPHI-MRN-778812"
LPS = np.diag([-1.0, -1.0, 1.0])


def accession_number(subject: str, session: str) -> str:
    """Fake accession number (PHI) of one study."""
    return f"FAKEPHI{subject}{session}"


def phi_strings(subjects_sessions: list[tuple[str, str]]) -> list[str]:
    """Every fake PHI string written into the DICOM headers."""
    fixed = [*PHI.values(), FREE_TEXT_PHI]
    return fixed + [accession_number(s, ses) for s, ses in subjects_sessions]


def series_dirname(seq: str) -> str:
    """`{SeriesNumber:02d}_{slug}` folder name of a sequence's series."""
    number, desc = SERIES[seq][0], SERIES[seq][1]
    return f"{number:02d}_{desc.lower().replace(' ', '_')}"


def _ds_str(x: float) -> str:
    """Decimal-string value within the 16-character DS limit."""
    s = f"{x:.10g}"
    return s if len(s) <= 16 else f"{x:.8g}"


def quantise(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    """uint16 pixels plus (slope, intercept) whose DS strings reproduce the values."""
    lo, hi = float(np.min(data)), float(np.max(data))
    slope = float(_ds_str((hi - lo) / 65535.0)) if hi > lo else 1.0
    intercept = float(_ds_str(lo))
    q = np.clip(np.round((data - intercept) / slope), 0, 65535).astype(np.uint16)
    return q, slope, intercept


def slice_geometry(affine: np.ndarray, shape) -> tuple[list[float], list[np.ndarray]]:
    """ImageOrientationPatient and per-slice ImagePositionPatient (LPS) for an RAS grid.

    Columns run along decreasing i and rows along decreasing j, so an RAS-axial grid becomes the
    usual L->R / A->P display (row cosine +x, column cosine +y in LPS).
    """
    nx, ny, nz = shape
    col_dir = LPS @ (-affine[:3, 0]) / np.linalg.norm(affine[:3, 0])
    row_dir = LPS @ (-affine[:3, 1]) / np.linalg.norm(affine[:3, 1])
    iop = [*col_dir.tolist(), *row_dir.tolist()]
    positions = [LPS @ (affine @ np.array([nx - 1, ny - 1, k, 1.0]))[:3] for k in range(nz)]
    return iop, positions


def _base_dataset(
    seq: str,
    *,
    subject: str,
    session: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    study_date: str,
    scanner: dict,
) -> Dataset:
    """Header fields shared by all slices of one series (fake PHI included)."""
    number, desc, tr, te, ti, image_type = SERIES[seq]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.ImageType = image_type
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
        study_uid,
        series_uid,
        frame_uid,
    )
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    ds.StudyTime, ds.SeriesTime = "093000", f"09{30 + number:02d}00"
    ds.StudyID = "1"
    ds.PatientID = subject
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.AccessionNumber = accession_number(subject, session)
    ds.StudyDescription = "MRI BRAIN TUMOUR FAKEPHI^JANE"
    ds.ImageComments = FREE_TEXT_PHI
    ds.PatientSex = "F"
    ds.PatientPosition = "HFS"
    ds.Manufacturer = scanner["manufacturer"]
    ds.ManufacturerModelName = scanner["model"]
    ds.MagneticFieldStrength = scanner["field"]
    ds.SeriesNumber, ds.AcquisitionNumber = number, 1
    ds.SeriesDescription = ds.ProtocolName = desc
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "SK", "2D"
    ds.RepetitionTime, ds.EchoTime = _ds_str(tr), _ds_str(te)
    if ti is not None:
        ds.InversionTime = _ds_str(ti)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleType = "US"
    return ds


def write_series(
    data: np.ndarray,
    affine: np.ndarray,
    seq: str,
    out_dir: Path,
    *,
    subject: str,
    session: str,
    study_uid: str,
    frame_uid: str,
    uid_seed: str,
    study_date: str,
    scanner: dict,
) -> list[Path]:
    """Write one sequence as an axial DICOM series (one file per slice); returns the paths.

    Slices go to a hidden sibling folder that is renamed into place at the end, so a killed job
    never leaves a partial series that looks complete.
    """
    q, slope, intercept = quantise(data)
    iop, positions = slice_geometry(affine, data.shape)
    dx, dy, dz = (float(np.linalg.norm(affine[:3, i])) for i in range(3))
    series_uid = generate_uid(entropy_srcs=[uid_seed, seq, "series"])
    ds = _base_dataset(
        seq,
        subject=subject,
        session=session,
        study_uid=study_uid,
        series_uid=series_uid,
        frame_uid=frame_uid,
        study_date=study_date,
        scanner=scanner,
    )
    ds.ImageOrientationPatient = [_ds_str(v) for v in iop]
    ds.PixelSpacing = [_ds_str(dy), _ds_str(dx)]  # row spacing (between rows), column spacing
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds_str(dz)
    ds.Rows, ds.Columns = data.shape[1], data.shape[0]
    ds.RescaleSlope, ds.RescaleIntercept = _ds_str(slope), _ds_str(intercept)
    out_dir = Path(out_dir)
    tmp_dir = out_dir.parent / f".{out_dir.name}.tmp"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    names = []
    for k, pos in enumerate(positions):
        sop_uid = generate_uid(entropy_srcs=[uid_seed, seq, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds_str(v) for v in pos]
        ds.SliceLocation = _ds_str(float(pos[2]))
        # pixel[r, c] = voxel[nx-1-c, ny-1-r, k] (see slice_geometry)
        ds.PixelData = np.ascontiguousarray(q[::-1, ::-1, k].T).tobytes()
        name = f"IM{k + 1:04d}.dcm"
        ds.save_as(tmp_dir / name, enforce_file_format=True)
        names.append(name)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp_dir.rename(out_dir)
    return [out_dir / n for n in names]
