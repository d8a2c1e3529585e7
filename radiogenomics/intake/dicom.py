"""Intake stage: TCIA-style DICOM series -> NIfTI with dcm2niix (through nipype), de-identified.

Series are grouped by SeriesInstanceUID from headers only, and each chosen series is converted on
its own so one odd series (a report, an RTSTRUCT, a localiser) never mixes into another.
3-D series are mapped to sequences by configurable SeriesDescription rules. Raw 4-D acquisitions
(several images per slice position) are recognised by their tags (`acquisition_kind`): DWI/DTI
by diffusion b-values (standard 0018,9087 or the GE/Siemens private tags), DSC by many temporal
positions of a T2*-weighted (TE >= 15 ms, TR <= 3 s) echo-planar or gradient-echo series, DCE by
many temporal positions of a T1-weighted (TE < 10 ms, TR < 20 ms) gradient echo; rules named
after a kind (`dsc`, `dwi`, `dti`, `dce`) add a SeriesDescription `include` for series whose tags
say too little and an `exclude` (e.g. BOLD fMRI). dcm2niix writes their b-values/vectors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
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


RAW_KINDS = ("dsc", "dwi", "dti", "dce")
# Diffusion b-value tags: standard (MR diffusion macro), GE (first value, 1e9 offset), Siemens.
B_VALUE_TAGS = (0x00189087, 0x00431039, 0x0019100C)
# Tag thresholds of the raw kinds (ms): DSC is T2*-weighted and fast, DCE T1-weighted spoiled GRE.
DSC_MIN_TE_MS, DSC_MAX_TR_MS, DCE_MAX_TE_MS, DCE_MAX_TR_MS = 15.0, 3000.0, 10.0, 20.0
MIN_DYNAMIC_VOLUMES = 10


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
    # Acquisition tags of every file, to tell raw 4-D series apart (`acquisition_kind`).
    positions: set = field(default_factory=set)
    temporal: set = field(default_factory=set)
    echo_times: set = field(default_factory=set)
    b_values: set = field(default_factory=set)
    repetition_ms: float | None = None
    scanning: str = ""

    @property
    def is_image(self) -> bool:
        return self.has_pixels and self.sop_class.startswith(IMAGE_SOP_PREFIXES)

    @property
    def volumes(self) -> int:
        """Images per slice position (1 for a 3-D series; echoes count too)."""
        return max(1, round(len(self.files) / max(1, len(self.positions))))


def _many(value) -> bool:
    """A multi-valued header value (pydicom's MultiValue, a list or tuple), not a string."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _float(value) -> float | None:
    """The (first) number of a header value, or None."""
    if _many(value):
        value = value[0] if len(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _b_value(ds) -> float | None:
    """The diffusion b-value of one file, from the standard or a vendor's private tag."""
    for tag in B_VALUE_TAGS:
        if tag in ds:
            raw = ds[tag].value
            if isinstance(raw, bytes):
                raw = raw.decode(errors="ignore").split("\\")[0]
            b = _float(raw)
            if b is not None:
                # GE stores b + 1e9 (or 1e9 * k) in 0043,1039's first value.
                return b % 1e9 if tag == 0x00431039 else b
    return None


def _collect_tags(s: Series, ds) -> None:
    """Add one file's acquisition tags to its series."""
    pos = getattr(ds, "ImagePositionPatient", None)
    if pos is not None:
        s.positions.add(tuple(round(float(x), 2) for x in pos))
    for key, bucket in (("TemporalPositionIdentifier", s.temporal), ("EchoTime", s.echo_times)):
        v = _float(getattr(ds, key, None))
        if v is not None:
            bucket.add(round(v, 3))
    b = _b_value(ds)
    if b is not None:
        s.b_values.add(round(b))
    if s.repetition_ms is None:
        s.repetition_ms = _float(getattr(ds, "RepetitionTime", None))
    if not s.scanning:
        seq = getattr(ds, "ScanningSequence", "")
        s.scanning = "\\".join(str(x) for x in seq) if _many(seq) else str(seq)


def _rule_matches(rule: dict | None, description: str, key: str) -> bool:
    return bool(rule and rule.get(key)) and bool(
        re.search(rule[key], description, flags=re.IGNORECASE)
    )


def acquisition_kind(s: Series, rules: dict[str, dict] | None = None) -> str | None:
    """The raw kind of a 4-D series (dsc, dwi, dce), or None for a 3-D or unknown series.

    Tags decide (see the module doc); a kind's rule in `rules` can exclude a series by its
    description, or include a 4-D series whose tags are silent (e.g. no echo time)."""
    rules = rules or {}
    if s.volumes < 2 or not s.is_image:
        return None
    kind = None
    te = max(s.echo_times) if s.echo_times else None
    tr = s.repetition_ms
    dynamic = s.volumes >= MIN_DYNAMIC_VOLUMES and len(s.echo_times) <= 2
    if len(s.b_values) > 1 or any(b > 0 for b in s.b_values):
        kind = "dwi"
    elif dynamic and te is not None and tr is not None:
        if (
            te >= DSC_MIN_TE_MS
            and tr <= DSC_MAX_TR_MS
            and ("EP" in s.scanning or "GR" in s.scanning)
        ):
            kind = "dsc"
        elif te < DCE_MAX_TE_MS and tr < DCE_MAX_TR_MS:
            kind = "dce"
    if kind and _rule_matches(rules.get(kind), s.description, "exclude"):
        kind = None
    if kind is None:
        for k in RAW_KINDS:
            rule = rules.get(k)
            if _rule_matches(rule, s.description, "include") and not _rule_matches(
                rule, s.description, "exclude"
            ):
                return k
    if kind == "dwi" and _rule_matches(rules.get("dti"), s.description, "include"):
        return "dti"
    return kind


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
        _collect_tags(series[uid], ds)
    return sorted(series.values(), key=lambda s: (s.number, s.description))


def match_sequence(description: str, rules: dict[str, dict]) -> str | None:
    """First sequence whose include regex matches and exclude regex does not (rules are ordered;
    the raw kinds' rules are `acquisition_kind`'s, not sequences')."""
    for seq, rule in rules.items():
        if seq in RAW_KINDS:
            continue
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
        kind = acquisition_kind(s, rules)
        if kind is not None:
            # The longest series of a kind wins (a re-run after motion is usually complete).
            if kind not in chosen or len(s.files) > len(chosen[kind].files):
                chosen[kind] = s
            continue
        seq = match_sequence(s.description, rules)
        if seq is not None and s.volumes > 1:
            # A 4-D series where a 3-D sequence is expected: name it rather than convert it.
            notes.setdefault(
                seq,
                f"series {s.number} '{s.description}' has {s.volumes} images per slice position "
                f"(4-D; not a 3-D {seq}, and its tags match no raw acquisition kind; file "
                f"{s.files[0]})",
            )
            continue
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


def _run_dcm2niix(s: Series, workdir: Path) -> Path:
    """Convert one series with nipype's Dcm2niix (anonymised BIDS sidecar); the output folder."""
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
    if not list(out.glob("*.nii.gz")):
        raise SubjectError(
            f"dcm2niix produced no image for series {s.number} '{s.description}'",
            stage="intake",
            file=s.files[0],
        )
    return out


def _load_converted(nii: Path) -> tuple[nib.Nifti1Image, dict]:
    """One dcm2niix output image (scaled values kept exact) and its raw JSON sidecar."""
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
    return img, meta


def convert_series(
    s: Series, workdir: Path, phi_terms: frozenset[str] | None = None
) -> tuple[nib.Nifti1Image, dict]:
    """Convert one series with nipype's Dcm2niix (anonymised sidecar); return image and sidecar.

    Kept sidecar values holding any of `phi_terms` (default: the series' own) are dropped."""
    out = _run_dcm2niix(s, workdir)
    img, meta = _load_converted(sorted(out.glob("*.nii.gz"))[0])
    return img, clean_sidecar(meta, s.phi_terms if phi_terms is None else phi_terms)


def convert_acquisition(
    s: Series, kind: str, workdir: Path, phi_terms: frozenset[str] | None = None
) -> tuple[list[nib.Nifti1Image], dict, tuple[np.ndarray, np.ndarray | None] | None]:
    """Convert a raw 4-D series: (images, one per echo; de-identified sidecar with EchoTime per
    echo; (b-values, b-vectors as 3 x N) from dcm2niix's .bval/.bvec for diffusion, else None).

    A 3-D result, or diffusion without b-values, raises SubjectError naming the series."""
    out = _run_dcm2niix(s, workdir)
    niftis = sorted(out.glob("*.nii.gz"))
    # dcm2niix splits echoes into series_e1, series_e2 (the unsuffixed name is the only echo).
    echoes = sorted(niftis, key=lambda p: (re.search(r"_e(\d+)\.nii\.gz$", p.name) is None,
                                          p.name))[:2] if kind == "dsc" else niftis[:1]  # fmt: skip
    loaded = [_load_converted(p) for p in echoes]
    images = [img for img, _ in loaded]
    for img in images:
        if img.ndim != 4 or img.shape[3] < 2:
            raise SubjectError(
                f"series {s.number} '{s.description}' looks like a {kind} acquisition but "
                f"converts to shape {img.shape}, not a 4-D series",
                stage="intake",
                file=s.files[0],
            )
    meta = clean_sidecar(loaded[0][1], s.phi_terms if phi_terms is None else phi_terms)
    tes = [m.get("EchoTime") for _, m in loaded]
    if len(tes) == 2 and all(t is not None for t in tes):
        meta["EchoTime"] = tes
    gradients = None
    if kind in ("dwi", "dti"):
        bval = sorted(out.glob("*.bval"))
        bvec = sorted(out.glob("*.bvec"))
        if not bval:
            raise SubjectError(
                f"series {s.number} '{s.description}': dcm2niix found no b-values",
                stage="intake",
                file=s.files[0],
            )
        bvals = np.loadtxt(bval[0], ndmin=1).astype(np.float64).ravel()
        bvecs = np.loadtxt(bvec[0], ndmin=2).astype(np.float64) if bvec else None
        gradients = (bvals, bvecs)
    return images, meta, gradients


def convert_session(
    folder: str | Path, rules: dict[str, dict], required: list[str]
) -> tuple[dict[str, tuple], dict[str, str]]:
    """Convert one study folder; a missing required sequence raises, naming the series found.

    Returns {sequence: (image, sidecar)} for 3-D sequences and {kind: (images, sidecar,
    gradients)} for raw acquisitions (see `convert_acquisition`), and notes on skipped series."""
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
    for kind in RAW_KINDS:
        if kind in chosen:
            s = chosen[kind]
            log.info("series %d '%s': raw %s (%d images per position)", s.number, s.description,
                     kind, s.volumes)  # fmt: skip
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
            if seq in RAW_KINDS:
                imgs, meta, gradients = convert_acquisition(s, seq, Path(tmp), phi_terms)
                meta["SeriesNumber"] = s.number
                images[seq] = (imgs, meta, gradients)
                continue
            img, meta = convert_series(s, Path(tmp), phi_terms)
            meta["SeriesNumber"] = s.number
            images[seq] = (img, meta)
    shutil.rmtree(tmp, ignore_errors=True)
    return images, notes
