"""Intake stage: TCIA-style DICOM series -> NIfTI with dcm2niix (through nipype), de-identified.

Series are grouped by SeriesInstanceUID from headers only, mapped to sequences by configurable
SeriesDescription rules, and each chosen series is converted on its own so one odd series
(a report, an RTSTRUCT, a localiser) never mixes into another.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import pydicom
from pydicom.errors import InvalidDicomError

from radiogenomics.errors import SubjectError
from radiogenomics.intake.deid import clean_sidecar, identifying_terms

log = logging.getLogger(__name__)

# Storage classes with pixel images dcm2niix reconstructs (MR, enhanced MR, CT, secondary capture).
IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.5.1.4.1.1.7",
)


@dataclass
class Series:
    uid: str
    description: str
    modality: str
    sop_class: str
    number: int
    patient: str = ""
    files: list[Path] = field(default_factory=list)
    has_pixels: bool = True
    # Identifying header values (names, IDs, site), searched for in the sidecar's kept values.
    phi_terms: frozenset[str] = frozenset()

    @property
    def is_image(self) -> bool:
        return self.has_pixels and self.sop_class.startswith(IMAGE_SOP_PREFIXES)


def scan_series(folder: str | Path) -> list[Series]:
    """Group every DICOM file under `folder` by series (headers only, no pixel data)."""
    folder = Path(folder)
    series: dict[str, Series] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=None)
        except (InvalidDicomError, OSError, AttributeError, ValueError):
            log.info("not DICOM, skipped: %s", path.name)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "")) or f"nouid-{path.parent.name}"
        if uid not in series:
            series[uid] = Series(
                uid=uid,
                description=str(getattr(ds, "SeriesDescription", "")),
                modality=str(getattr(ds, "Modality", "")),
                sop_class=str(getattr(ds, "SOPClassUID", "")),
                number=int(getattr(ds, "SeriesNumber", 0) or 0),
                patient=str(getattr(ds, "PatientID", "")),
                has_pixels="Rows" in ds and "Columns" in ds,
                phi_terms=frozenset(identifying_terms(ds)),
            )
        series[uid].files.append(path)
    return sorted(series.values(), key=lambda s: (s.number, s.description))


def match_sequence(description: str, rules: dict[str, dict]) -> str | None:
    """First sequence whose include regex matches and exclude regex does not (rules are ordered)."""
    for seq, rule in rules.items():
        if re.search(rule["include"], description, flags=re.IGNORECASE) and not (
            rule.get("exclude") and re.search(rule["exclude"], description, flags=re.IGNORECASE)
        ):
            return seq
    return None


def assign_series(
    series: list[Series], rules: dict[str, dict]
) -> tuple[dict[str, Series], dict[str, str]]:
    """Choose one image series per sequence; return also notes on non-image or duplicate matches."""
    chosen: dict[str, Series] = {}
    notes: dict[str, str] = {}
    for s in series:
        seq = match_sequence(s.description, rules)
        if seq is None:
            continue
        if not s.is_image:
            notes.setdefault(
                seq,
                f"series {s.number} '{s.description}' is not an image "
                f"(SOPClassUID {s.sop_class or 'missing'}; file {s.files[0]})",
            )
            continue
        if seq in chosen and len(chosen[seq].files) >= len(s.files):
            continue
        chosen[seq] = s
    return chosen, notes


def _dcm2niix_env() -> None:
    # The PyPI dcm2niix wheel puts the binary beside the interpreter; find it without activation.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def convert_series(
    s: Series, workdir: Path, phi_terms: frozenset[str] | None = None
) -> tuple[nib.Nifti1Image, dict]:
    """Convert one series with nipype's Dcm2niix (anonymised sidecar); return image and sidecar.

    Kept sidecar values holding any of `phi_terms` (default: the series' own) are dropped."""
    from nipype.interfaces.dcm2nii import Dcm2niix

    _dcm2niix_env()
    src = workdir / f"in_{s.number}"
    out = workdir / f"out_{s.number}"
    src.mkdir(parents=True)
    out.mkdir(parents=True)
    for i, f in enumerate(s.files):
        os.symlink(f.resolve(), src / f"{i:05d}.dcm")
    conv = Dcm2niix(
        source_dir=str(src),
        output_dir=str(out),
        out_filename="series",
        compress="y",
        bids_format=True,
        anon_bids=True,
        single_file=False,
    )
    try:
        conv.run(cwd=str(workdir))
    except Exception as exc:  # nipype wraps the binary's failure in a RuntimeError
        raise SubjectError(
            f"dcm2niix failed on series {s.number} '{s.description}': {exc}".splitlines()[0],
            stage="intake",
            file=s.files[0],
        ) from exc
    niftis = sorted(out.glob("*.nii.gz"))
    if not niftis:
        raise SubjectError(
            f"dcm2niix produced no image for series {s.number} '{s.description}'",
            stage="intake",
            file=s.files[0],
        )
    nii = niftis[0]
    side = nii.with_name(nii.name[: -len(".nii.gz")] + ".json")
    meta = json.loads(side.read_text()) if side.exists() else {}
    img = nib.load(str(nii))
    img = nib.Nifti1Image(
        img.get_fdata(dtype="float32")
        if img.header.get_slope_inter()[0] not in (None, 1.0)
        else img.dataobj[...],
        img.affine,
        img.header,
    )
    return img, clean_sidecar(meta, s.phi_terms if phi_terms is None else phi_terms)


def convert_session(
    folder: str | Path, rules: dict[str, dict], required: list[str]
) -> tuple[dict[str, tuple[nib.Nifti1Image, dict]], dict[str, str]]:
    """Convert one study folder; a missing required sequence raises, naming the series found."""
    folder = Path(folder)
    series = scan_series(folder)
    if not series:
        raise SubjectError("no DICOM files found", stage="intake", file=folder)
    patients = sorted({s.patient for s in series if s.patient})
    if len(patients) > 1:
        # One study folder must hold one patient: anything else means a mixed-up download.
        raise SubjectError(
            f"DICOM of {len(patients)} different patients in one study folder",
            stage="intake",
            file=folder,
        )
    chosen, notes = assign_series(series, rules)
    missing = [seq for seq in required if seq not in chosen]
    if missing:
        seq = missing[0]
        found = "; ".join(f"{s.number} '{s.description}'" for s in series)
        detail = notes.get(seq, f"no series matched the rule for {seq}")
        raise SubjectError(
            f"required sequence {seq} missing: {detail}. Series found: {found}",
            stage="intake",
            file=folder,
        )
    # One study, one patient: a name in any series' header is searched for in every sidecar.
    phi_terms = frozenset().union(*(s.phi_terms for s in series))
    images = {}
    with tempfile.TemporaryDirectory(prefix="dcm2niix-") as tmp:
        for seq, s in chosen.items():
            img, meta = convert_series(s, Path(tmp), phi_terms)
            meta["SeriesNumber"] = s.number
            images[seq] = (img, meta)
    shutil.rmtree(tmp, ignore_errors=True)
    return images, notes
