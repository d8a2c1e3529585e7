"""Intake stage: write one subject/session's canonical `anat/` folder and its manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.errors import SubjectError
from radiogenomics.intake.deid import clean_header
from radiogenomics.intake.dicom import convert_session
from radiogenomics.intake.nifti import canonical_image, sidecar_for
from radiogenomics.intake.raw import RAW_KINDS, take_nifti_acquisition, write_acquisition
from radiogenomics.io import save_nifti, write_json
from radiogenomics.labels import map_label_convention

log = logging.getLogger(__name__)


def _check_same_space(
    images: dict[str, nib.Nifti1Image],
    tolerance_mm: float = 60.0,
    files: dict[str, str] | None = None,
) -> None:
    """Sequences of one session must overlap in world space (co-registration fixes the rest)."""
    centres = {}
    for seq, img in images.items():
        centre_vox = (0.5 * (dim - 1) for dim in img.shape[:3])
        centres[seq] = img.affine[:3, :3] @ list(centre_vox) + img.affine[:3, 3]
    ref_seq = next(iter(centres))
    for seq, c in centres.items():
        dist = float(((c - centres[ref_seq]) ** 2).sum() ** 0.5)
        if dist > tolerance_mm:
            raise SubjectError(
                f"{seq} field-of-view centre is {dist:.0f} mm from {ref_seq}'s: "
                "not the same session/patient?",
                stage="intake",
                file=(files or {}).get(seq),
            )


def unusable_map_reason(img: nib.Nifti1Image) -> str | None:
    """Why an optional map carries no information (all NaN/inf, or constant), else None."""
    data = np.asanyarray(img.dataobj)
    finite = np.isfinite(data)
    if not finite.any():
        return "every voxel is NaN/inf"
    if float(np.ptp(data[finite])) == 0.0:
        return f"every finite voxel has the same value {float(data[finite][0]):g}"
    return None


def check_provided_labels(data: np.ndarray, convention: str, file: str | Path) -> None:
    """Fail at intake, not after preprocessing, on unmappable label values or an empty mask."""
    map_label_convention(data, convention, file=file, stage="intake")
    if not np.any(data):
        raise SubjectError(
            "provided tumour labels are empty (every voxel is 0)", stage="intake", file=file
        )


def _where(cohort: dict, seq: str) -> str:
    """How the layout looks for a sequence, for error messages."""
    if cohort["layout"] == "brats":
        return f"file pattern {cohort['patterns'].get(seq, seq)!r}"
    if cohort["layout"] == "bids":
        return f"suffix _{cohort['bids_suffixes'].get(seq, seq)}.nii.gz"
    return f"a row with sequence {seq!r} in {cohort.get('table', 'the table')}"


def required_sequences(cohort: dict, sequences: dict) -> list[str]:
    """The sequences every session of this cohort must have (its own list, else the global one)."""
    return list(cohort.get("required_sequences") or sequences["required"])


def intake_session(cohort: dict, row: dict, sequences: dict, out_dir: str | Path) -> dict:
    """Canonicalise the session's images into `out_dir` (= `{sd}/anat`); return the manifest."""
    out_dir = Path(out_dir)
    required = required_sequences(cohort, sequences)
    # Every known sequence the session has is taken; only the cohort's required ones must exist.
    known = (*sequences["structural"], *sequences["optional_maps"])
    optional = [s for s in known if s not in required]
    raw_kinds = list(sequences.get("raw_acquisitions", RAW_KINDS))
    images: dict[str, nib.Nifti1Image] = {}
    sidecars: dict[str, dict] = {}
    missing: dict[str, str] = {}
    acquisitions: dict[str, dict] = {}

    if cohort["layout"] == "tcia-dicom":
        converted, notes = convert_session(row["source_dir"], cohort["series_rules"], required)
        for seq, conv in converted.items():
            if seq in raw_kinds:
                imgs, meta, gradients = conv
                prov = {"source_orientation": "".join(nib.aff2axcodes(imgs[0].affine))}
                acquisitions[seq] = (imgs, meta | prov, gradients)
                continue
            img, meta = conv
            if seq not in required + optional:
                continue
            images[seq] = clean_header(nib.as_closest_canonical(img))
            sidecars[seq] = meta | {"source_orientation": "".join(nib.aff2axcodes(img.affine))}
        for seq in optional:
            if seq not in images:
                missing[seq] = notes.get(seq, "no series matched")
    else:
        sources = row["source"]
        for seq in required:
            if seq not in sources:
                raise SubjectError(
                    f"required sequence {seq} not found (looked for {_where(cohort, seq)})",
                    stage="intake",
                    file=row["source_dir"],
                )
        for seq in required + optional:
            if seq not in sources:
                missing[seq] = "not provided by the cohort"
                continue
            img, prov = canonical_image(sources[seq], what=f"{seq} image")
            reason = unusable_map_reason(img) if seq in sequences["optional_maps"] else None
            if reason:
                # An empty optional map is like an absent one: its features are NaN with a
                # qc_reason; the subject's structural analysis goes on.
                missing[seq] = f"{reason} ({sources[seq]})"
                log.warning("%s map dropped: %s: %s", seq, reason, sources[seq])
                continue
            images[seq] = img
            sidecars[seq] = sidecar_for(sources[seq]) | prov
        for kind in raw_kinds:
            if sources.get(kind):
                acquisitions[kind] = sources

    # Name the offending file: the source image, or the DICOM study folder.
    files = {s: row["source"].get(s) or row["source_dir"] for s in images}
    _check_same_space({s: images[s] for s in images}, files=files)
    out_dir.mkdir(parents=True, exist_ok=True)
    for seq, img in images.items():
        save_nifti(img, out_dir / f"{seq}.nii.gz")
        write_json(sidecars[seq] | {"sequence": seq}, out_dir / f"{seq}.json")
    # Raw 4-D acquisitions: the preprocessing stage computes their maps.
    raw_entries = {}
    for kind, found in acquisitions.items():
        if isinstance(found, dict):  # a NIfTI layout's sources
            raw_entries[kind] = take_nifti_acquisition(kind, found, out_dir)
        else:
            imgs, meta, gradients = found
            if gradients is not None and gradients[1] is not None:
                gradients = (gradients[0], np.asarray(gradients[1]))
            raw_entries[kind] = write_acquisition(kind, imgs, meta, gradients, out_dir)

    labels_file = None
    if cohort["segmentation"] == "provided":
        src = row["source"].get("labels")
        if not src:
            raise SubjectError(
                "cohort segmentation is 'provided' but no label image was found "
                f"(pattern {cohort.get('patterns', {}).get('labels')})",
                stage="intake",
                file=row["source_dir"],
            )
        lab, _ = canonical_image(src, what="provided tumour labels", integer_labels=True)
        check_provided_labels(np.asarray(lab.dataobj), cohort["label_convention"], src)
        save_nifti(lab, out_dir / "provided_labels.nii.gz")
        labels_file = "provided_labels.nii.gz"

    manifest = {
        "cohort": row["cohort"],
        "subject": row["subject"],
        "session": row["session"],
        "layout": cohort["layout"],
        "sequences": {s: f"{s}.nii.gz" for s in sorted(images)},
        "missing": missing,
        "acquisitions": raw_entries,
        "skull_stripped": cohort["skull_stripped"],
        "labels_file": labels_file,
    }
    if row.get("study_day") is not None and not pd.isna(row["study_day"]):
        # Only when the cohort asks for it (tcia-dicom `session_day_offset`): days, never a date.
        manifest["study_day"] = int(row["study_day"])
    write_json(manifest, out_dir / "manifest.json")
    log.info(
        "intake %s/%s/%s: %s, raw %s",
        row["cohort"],
        row["subject"],
        row["session"],
        sorted(images),
        sorted(raw_entries),
    )
    return manifest
