"""Result-path helpers shared by the Snakefile, rules and scripts (the directory contract)."""

from __future__ import annotations

import hashlib
from pathlib import Path

RESULTS = Path("results")
SEQUENCES_REQUIRED = ("t1", "t1ce", "t2", "flair")
ROIS = (
    "whole_tumor",
    "tumor_core",
    "enhancing",
    "necrosis",
    "edema",
    "peritumoral_near",
    "peritumoral_far",
)
FEATURE_FAMILIES = ("lesion_wide", "histogram", "radiomics", "mismatch", "location")


def subject_dir(cohort: str, subject: str, session: str, root: str | Path = RESULTS) -> Path:
    """`results/{cohort}/sub-{subject}/ses-{session}`."""
    return Path(root) / cohort / f"sub-{subject}" / f"ses-{session}"


def subject_dir_pattern(root: str | Path = RESULTS) -> str:
    """The same path with Snakemake wildcards."""
    return str(Path(root) / "{cohort}" / "sub-{subject}" / "ses-{session}")


def session_dir_of(path: str | Path) -> Path:
    """The `.../sub-{subject}/ses-{session}` directory that holds `path`."""
    p = Path(path)
    for parent in (p, *p.parents):
        if parent.name.startswith("ses-") and parent.parent.name.startswith("sub-"):
            return parent
    raise ValueError(f"no sub-/ses- directory above {path}")


def roi_paths(sd: str | Path) -> dict[str, Path]:
    """The seven ROI masks `segment_tumor` writes: `{sd}/seg/rois/{roi}.nii.gz`."""
    return {roi: Path(sd) / "seg" / "rois" / f"{roi}.nii.gz" for roi in ROIS}


def prep_paths(sd: str | Path) -> dict[str, Path]:
    """Files of `preprocess_subject` that later jobs read by path (SyN runs add the warps)."""
    prep = Path(sd) / "prep"
    return {
        "brain_mask": prep / "brain_mask.nii.gz",
        "atlas_affine": prep / "to_template_affine.mat",
        "atlas_warp": prep / "to_template_warp.nii.gz",
        "atlas_invwarp": prep / "to_template_invwarp.nii.gz",
    }


def entities_from_path(path: str | Path) -> tuple[str, str, str]:
    """(cohort, subject, session) from any path inside a subject directory."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part.startswith("sub-") and i + 1 < len(parts) and parts[i + 1].startswith("ses-"):
            return parts[i - 1], part[4:], parts[i + 1][4:]
    raise ValueError(f"no sub-/ses- entities in {path}")


def failure_marker(sd: str | Path) -> Path:
    """Marker a failed per-subject step leaves behind."""
    return Path(sd) / "qc" / "failure.json"


def subject_seed(seed: int, *keys: str) -> int:
    """A stable per-subject seed (Python's hash() is salted per process, so use sha256)."""
    h = hashlib.sha256(("/".join(keys)).encode()).hexdigest()
    return (int(seed) + int(h[:8], 16)) % (2**32 - 1)


def feature_column(family: str, seq: str, roi: str, feature: str) -> str:
    """`{family}__{seq}__{roi}__{feature}`."""
    return f"{family}__{seq}__{roi}__{feature}"
