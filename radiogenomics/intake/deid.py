"""Intake stage: de-identification of sidecars and NIfTI headers (whitelists, never blacklists)."""

from __future__ import annotations

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
}


def clean_sidecar(meta: dict) -> dict:
    """Keep whitelisted acquisition fields only."""
    return {k: v for k, v in meta.items() if k in SIDECAR_WHITELIST}


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
