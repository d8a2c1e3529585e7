"""Demo cohort generator (foundation stage): TCIA-style DICOM series with fake PHI (site B).

One axial series per sequence, uint16 pixels with RescaleSlope/Intercept, geometry tags
(ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) exact, so dcm2niix
rebuilds the NIfTI grid of the truth. Headers carry fake PHI that intake must remove.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
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
    # Raw 4-D acquisitions (sessions with `raw_acquisitions`): intake tells them apart by their
    # tags (temporal positions, echo time, b-values), not by these descriptions.
    "dsc": (7, "AX PERFUSION", 1500.0, 45.0, None, ["ORIGINAL", "PRIMARY", "M", "ND"]),
    "dwi": (8, "AX DIFFUSION", 6000.0, 80.0, None, ["ORIGINAL", "PRIMARY", "M", "ND"]),
}
# Per-kind acquisition tags of the raw series: gradient-echo EPI for DSC, spin-echo EPI for DWI.
RAW_SEQUENCE = {"dsc": (["EP", "GR"], 60.0), "dwi": (["EP", "SE"], 90.0)}
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


def _series_dataset(
    data_shape: tuple[int, ...],
    affine: np.ndarray,
    seq: str,
    *,
    slope: float,
    intercept: float,
    uid_seed: str,
    **base,
) -> tuple[Dataset, list[np.ndarray]]:
    """The shared header of one series with its geometry and rescale tags, and slice positions."""
    iop, positions = slice_geometry(affine, data_shape[:3])
    dx, dy, dz = (float(np.linalg.norm(affine[:3, i])) for i in range(3))
    series_uid = generate_uid(entropy_srcs=[uid_seed, seq, "series"])
    ds = _base_dataset(seq, series_uid=series_uid, **base)
    ds.ImageOrientationPatient = [_ds_str(v) for v in iop]
    ds.PixelSpacing = [_ds_str(dy), _ds_str(dx)]  # row spacing (between rows), column spacing
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds_str(dz)
    ds.Rows, ds.Columns = data_shape[1], data_shape[0]
    ds.RescaleSlope, ds.RescaleIntercept = _ds_str(slope), _ds_str(intercept)
    return ds, positions


def _encode_element(elem) -> bytes:
    """One data element in explicit-VR little endian, as pydicom writes it."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, elem)
    return fp.getvalue()


class FastWriter:
    """Part 10 files of one series from pre-encoded elements: the fixed header is encoded once and
    each file adds its varying elements (pydicom's writer costs ~3 ms a file, and a DSC series is a
    thousand files). The bytes equal `Dataset.save_as(..., enforce_file_format=True)`'s."""

    def __init__(self, ds: Dataset, varying: Dataset) -> None:
        probe = DicomBytesIO()
        probe.is_little_endian, probe.is_implicit_VR = True, False
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2"  # replaced per file
        write_file_meta_info(probe, ds.file_meta, enforce_standard=True)  # fills required fields
        skip = {0x00020000, 0x00020003}
        self.meta = {
            t: _encode_element(ds.file_meta[t]) for t in ds.file_meta.keys() if t not in skip
        }
        self.fixed = {t: _encode_element(ds[t]) for t in ds.keys() if t not in varying}
        self.varying = varying

    def write(self, path: Path, sop_uid: str) -> None:
        """Write one file; `self.varying` holds its per-file values, `sop_uid` its instance UID."""
        meta = dict(self.meta)
        meta[0x00020003] = _encode_element(DataElement(0x00020003, "UI", sop_uid))
        meta_body = b"".join(meta[t] for t in sorted(meta))
        length = _encode_element(DataElement(0x00020000, "UL", len(meta_body)))
        self.varying.SOPInstanceUID = sop_uid
        body = dict(self.fixed)
        body.update({t: _encode_element(self.varying[t]) for t in self.varying.keys()})
        with open(path, "wb") as fh:
            fh.write(b"\0" * 128 + b"DICM" + length + meta_body)
            fh.write(b"".join(body[t] for t in sorted(body)))


def _fresh_dir(out_dir: Path) -> Path:
    """A hidden sibling folder for the slices, renamed into place once complete."""
    tmp_dir = out_dir.parent / f".{out_dir.name}.tmp"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    return tmp_dir


def _publish(tmp_dir: Path, out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp_dir.rename(out_dir)


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
    ds, positions = _series_dataset(
        data.shape, affine, seq, slope=slope, intercept=intercept, uid_seed=uid_seed,
        subject=subject, session=session, study_uid=study_uid, frame_uid=frame_uid,
        study_date=study_date, scanner=scanner,
    )  # fmt: skip
    varying = Dataset()
    varying.SOPInstanceUID = varying.InstanceNumber = varying.ImagePositionPatient = None
    varying.SliceLocation = None
    varying.add_new(0x7FE00010, "OW", b"")  # PixelData: 16-bit words
    writer = FastWriter(ds, varying)
    out_dir = Path(out_dir)
    tmp_dir = _fresh_dir(out_dir)
    names = []
    for k, pos in enumerate(positions):
        sop_uid = generate_uid(entropy_srcs=[uid_seed, seq, str(k)])
        varying.InstanceNumber = k + 1
        varying.ImagePositionPatient = [_ds_str(v) for v in pos]
        varying.SliceLocation = _ds_str(float(pos[2]))
        # pixel[r, c] = voxel[nx-1-c, ny-1-r, k] (see slice_geometry)
        varying.PixelData = np.ascontiguousarray(q[::-1, ::-1, k].T).tobytes()
        name = f"IM{k + 1:04d}.dcm"
        writer.write(tmp_dir / name, sop_uid)
        names.append(name)
    _publish(tmp_dir, out_dir)
    return [out_dir / n for n in names]


def write_series_4d(
    data: np.ndarray,
    affine: np.ndarray,
    kind: str,
    out_dir: Path,
    *,
    repetition_time_ms: float,
    echo_time_ms: float,
    bvals: np.ndarray | None = None,
    bvecs: np.ndarray | None = None,
    subject: str,
    session: str,
    study_uid: str,
    frame_uid: str,
    uid_seed: str,
    study_date: str,
    scanner: dict,
) -> list[Path]:
    """Write a raw 4-D acquisition (`dsc` or `dwi`) as a classic multi-slice DICOM series: one
    file per slice and volume, volumes told apart by TemporalPositionIdentifier (DSC) or by
    DiffusionBValue / DiffusionGradientOrientation (DWI), as scanners export them."""
    q, slope, intercept = quantise(data)
    ds, positions = _series_dataset(
        data.shape, affine, kind, slope=slope, intercept=intercept, uid_seed=uid_seed,
        subject=subject, session=session, study_uid=study_uid, frame_uid=frame_uid,
        study_date=study_date, scanner=scanner,
    )  # fmt: skip
    scanning, flip = RAW_SEQUENCE[kind]
    ds.ScanningSequence, ds.FlipAngle = scanning, _ds_str(flip)
    ds.RepetitionTime, ds.EchoTime = _ds_str(repetition_time_ms), _ds_str(echo_time_ms)
    n_vol = data.shape[3]
    if kind == "dsc":
        ds.NumberOfTemporalPositions = n_vol
        ds.ContrastBolusAgent = "GADOLINIUM"
    # Per-file tags, set on a small dataset of their own: the fixed part of the header is encoded
    # once (pydicom's writer costs ~3 ms a file, and a DSC series is a thousand files).
    varying = Dataset()
    varying.SOPInstanceUID = varying.InstanceNumber = varying.ImagePositionPatient = None
    varying.SliceLocation = None
    varying.add_new(0x7FE00010, "OW", b"")  # PixelData: 16-bit words
    if kind == "dsc":
        varying.TemporalPositionIdentifier = varying.AcquisitionNumber = None
        varying.TriggerTime = None
    else:
        varying.AcquisitionNumber = None
        varying.add_new(0x00189087, "FD", 0.0)
        varying.add_new(0x00189089, "FD", [0.0, 0.0, 0.0])
        varying.add_new(0x00189075, "CS", "")
    writer = FastWriter(ds, varying)
    out_dir = Path(out_dir)
    tmp_dir = _fresh_dir(out_dir)
    names = []
    n = 0
    for v in range(n_vol):
        if kind == "dsc":
            varying.TemporalPositionIdentifier = varying.AcquisitionNumber = v + 1
            varying.TriggerTime = _ds_str(v * repetition_time_ms)
        else:
            b = float(bvals[v])
            varying.AcquisitionNumber = 1
            varying[0x00189087].value = b  # DiffusionBValue
            varying[0x00189089].value = [float(x) for x in bvecs[v]]  # DiffusionGradientOrientation
            varying[0x00189075].value = "ISOTROPIC" if b == 0 else "DIRECTIONAL"
        for k, pos in enumerate(positions):
            n += 1
            sop_uid = generate_uid(entropy_srcs=[uid_seed, kind, str(v), str(k)])
            varying.InstanceNumber = n
            varying.ImagePositionPatient = [_ds_str(x) for x in pos]
            varying.SliceLocation = _ds_str(float(pos[2]))
            varying.PixelData = np.ascontiguousarray(q[::-1, ::-1, k, v].T).tobytes()
            name = f"IM{n:05d}.dcm"
            writer.write(tmp_dir / name, sop_uid)
            names.append(name)
    _publish(tmp_dir, out_dir)
    return [out_dir / n for n in names]
