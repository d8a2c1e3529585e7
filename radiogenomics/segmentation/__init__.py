"""Imaging chain (segmentation): tumour labels (provided, automated, nnU-Net) and ROI derivation.

Labels follow BraTS in the pipeline convention: 0 background, 1 necrosis/non-enhancing core,
2 oedema, 3 enhancing. `segment_tumor` and `write_rois` are the file-level entry points the rule
scripts call; the modules hold the pure functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.io import load_nifti, read_json, save_like, write_json
from radiogenomics.segmentation.nnunet import (
    map_model_labels,
    predict_nnunet,
    validate_nnunet_model_folder,
)
from radiogenomics.segmentation.provided import (
    check_label_grid,
    provided_labels_on_reference,
    resample_labels_nearest,
)
from radiogenomics.segmentation.rois import ROI_NAMES, derive_rois

log = logging.getLogger(__name__)
STAGE = "segment_tumor"
NECROSIS, EDEMA, ENHANCING = 1, 2, 3
METHODS = ("provided", "automated", "nnunet")
REFERENCE_ORDER = ("t1ce", "t1", "flair", "t2")


def read_prep(
    manifest_path: str | Path, *, stage: str = STAGE
) -> tuple[dict, dict[str, Path], str]:
    """Prep manifest -> (manifest, sequence paths, reference sequence name)."""
    p = Path(manifest_path)
    if not p.exists() or p.stat().st_size == 0:
        raise SubjectError(
            "prep manifest missing or empty (an earlier step failed?)", stage=stage, file=p
        )
    manifest = read_json(p)
    seqs = {s: p.parent / name for s, name in (manifest.get("sequences") or {}).items()}
    if not seqs:
        raise SubjectError("prep manifest lists no sequences", stage=stage, file=p)
    ref = manifest.get("reference")
    if ref not in seqs:
        ref = next((s for s in REFERENCE_ORDER if s in seqs), sorted(seqs)[0])
    return manifest, seqs, str(ref)


def voxel_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths in mm."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def load_on_grid(path: Path, ref: nib.Nifti1Image, what: str) -> np.ndarray:
    """Load an image that must share the reference grid (shape and affine)."""
    img = load_nifti(path, stage=STAGE, what=what)
    if img.shape != ref.shape or not np.allclose(img.affine, ref.affine, atol=1e-4):
        raise SubjectError(
            f"{what} is not on the reference grid (shape {img.shape} vs {ref.shape})",
            stage=STAGE,
            file=path,
        )
    return np.asarray(img.dataobj, dtype=np.float32)


def check_tumour_volume(
    labels: np.ndarray,
    spacing: np.ndarray,
    min_ml: float,
    method: str,
    file: str | Path | None = None,
) -> None:
    """Too small a whole tumour means the method found none: fail the subject visibly."""
    ml = float((labels > 0).sum() * np.prod(spacing) / 1000.0)
    if ml < min_ml:
        raise SubjectError(
            f"{method} segmentation found a whole tumour of {ml:.2f} ml < "
            f"segmentation.min_tumor_ml = {min_ml} ml",
            stage=STAGE,
            file=file,
        )
    log.info("%s segmentation: whole tumour %.2f ml", method, ml)


def segment_tumor(
    method: str,
    prep_manifest: str | Path,
    brain_mask: str | Path,
    out_path: str | Path,
    *,
    config: Mapping | None = None,
    label_convention: str = "brats",
    provided_labels: str | Path | None = None,
    anat_manifest: str | Path | None = None,
    seed: int = 0,
    threads: int = 1,
    meta_path: str | Path | None = None,
) -> np.ndarray:
    """Write `seg/tumor_labels.nii.gz` (uint8 0/1/2/3 on the reference grid) and return it.

    `meta_path` (optional JSON) records the method and, for `automated`, how the core was found
    and whether an ADC map was used (without one the non-enhancing core is T1/T2-only).
    """
    cfg = dict(config or {})
    if method not in METHODS:
        raise SubjectError(
            f"unknown segmentation method '{method}' (expected {METHODS})", stage=STAGE
        )
    _, seqs, ref_name = read_prep(prep_manifest)
    meta: dict = {"method": method}
    ref = load_nifti(seqs[ref_name], stage=STAGE, what=f"reference {ref_name} image")
    spacing = voxel_spacing(ref.affine)
    if method == "provided":
        if provided_labels is None:
            raise SubjectError(
                "cohort segmentation is 'provided' but no label image given", stage=STAGE
            )
        lab_img = load_nifti(provided_labels, stage=STAGE, what="provided tumour labels")
        if anat_manifest is not None:
            anat = read_json(anat_manifest)
            anat_ref = Path(anat_manifest).parent / anat["sequences"].get(
                ref_name, next(iter(anat["sequences"].values()))
            )
            check_label_grid(lab_img, nib.load(str(anat_ref)), file=provided_labels)
        labels = provided_labels_on_reference(
            lab_img,
            ref,
            label_convention,
            file=provided_labels,
            allowed=cfg.get("label_values_allowed"),
        )
    elif method == "automated":
        brain = load_on_grid(Path(brain_mask), ref, "brain mask") > 0
        images = {
            s: load_on_grid(p, ref, f"{s} image")
            for s, p in seqs.items()
            if s in ("t1", "t1ce", "t2", "flair", "adc")
        }
        # Imported on use: scikit-learn/scikit-image add ~1.5 s to every Snakefile parse otherwise
        # (and on SLURM every job parses it).
        from radiogenomics.segmentation.automated import (
            AutomatedParams,
            segment_automated_details,
        )

        params = AutomatedParams.from_config(cfg.get("automated"))
        try:
            labels, info = segment_automated_details(images, brain, spacing, params, seed=seed)
        except ValueError as exc:
            raise SubjectError(f"automated segmentation: {exc}", stage=STAGE) from exc
        meta |= info
    else:
        nn = dict(cfg.get("nnunet") or {})
        channels = list(nn.get("channels") or ("t1", "t1ce", "t2", "flair"))
        validate_nnunet_model_folder(
            nn.get("model_folder"),
            nn.get("folds"),
            nn.get("checkpoint", "checkpoint_final.pth"),
            channels,
        )
        missing = [c for c in channels if c not in seqs]
        if missing:
            raise SubjectError(
                f"nnU-Net needs sequences {missing} absent from the prep manifest",
                stage=STAGE,
                file=prep_manifest,
            )
        raw, aff = predict_nnunet(
            [seqs[c] for c in channels],
            nn["model_folder"],
            folds=nn.get("folds"),
            checkpoint=nn.get("checkpoint", "checkpoint_final.pth"),
            threads=threads,
        )
        mapped = map_model_labels(
            raw, nn.get("label_map") or {1: 1, 2: 2, 3: 3}, file=nn["model_folder"]
        )
        labels = resample_labels_nearest(mapped, aff, ref.shape, ref.affine)
    # Provided labels: name the cohort's label file (an empty mask is that file's problem).
    check_tumour_volume(
        labels, spacing, float(cfg.get("min_tumor_ml", 0.0)), method, file=provided_labels
    )
    save_like(labels.astype(np.uint8), ref, out_path, dtype=np.uint8)
    if meta_path is not None:
        write_json(meta, meta_path)
    return labels


def write_rois(
    labels_path: str | Path,
    brain_mask: str | Path,
    outputs: Mapping[str, str | Path],
    rings_mm: Sequence[Sequence[float]] = ((0.0, 5.0), (5.0, 10.0)),
) -> dict[str, int]:
    """Write every ROI mask (uint8, grid of the labels) and return their voxel counts."""
    lab_img = load_nifti(labels_path, stage="derive_rois", what="tumour labels")
    brain_img = load_nifti(brain_mask, stage="derive_rois", what="brain mask")
    if brain_img.shape != lab_img.shape or not np.allclose(
        brain_img.affine, lab_img.affine, atol=1e-4
    ):
        raise SubjectError(
            "brain mask is not on the grid of the tumour labels",
            stage="derive_rois",
            file=brain_mask,
        )
    rois = derive_rois(
        np.asarray(lab_img.dataobj),
        np.asarray(brain_img.dataobj) > 0,
        voxel_spacing(lab_img.affine),
        rings_mm,
    )
    missing = sorted(set(ROI_NAMES) - set(outputs))
    if missing:
        raise ValueError(f"no output path for ROIs {missing}")
    for name in ROI_NAMES:
        save_like(rois[name], lab_img, outputs[name], dtype=np.uint8)
    return {name: int(rois[name].sum()) for name in ROI_NAMES}


_AUTOMATED = ("AutomatedParams", "segment_automated", "segment_automated_details")


def __getattr__(name: str):
    """Lazy re-export of the automated method's names (see `segment_tumor`)."""
    if name in _AUTOMATED:
        from radiogenomics.segmentation import automated

        return getattr(automated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EDEMA",
    "ENHANCING",
    "METHODS",
    "NECROSIS",
    "ROI_NAMES",
    "AutomatedParams",
    "derive_rois",
    "map_model_labels",
    "resample_labels_nearest",
    "segment_automated",
    "segment_automated_details",
    "segment_tumor",
    "validate_nnunet_model_folder",
    "write_rois",
]
