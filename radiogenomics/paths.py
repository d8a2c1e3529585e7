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


# The per-session jobs in chain order, and what each writes under the session directory (a folder
# ends in "/"). A rerun of one makes every later one's files stale.
SESSION_CHAIN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("intake_subject", ("anat/",)),
    ("preprocess_subject", ("maps/", "prep/")),
    (
        "segment_tumor",
        ("seg/", "qc/overlay.png", "qc/metrics.tsv", "habitats/voxel_sample.npz"),
    ),
    (
        "extract_features",
        (
            "features/",
            "habitats/habitat_map.nii.gz",
            "habitats/habitat_fractions.tsv",
            "habitats/overlay.png",
        ),
    ),
)
# Cohort-level files built from every session's chain (relative to the results folder), with the
# last per-session job they read: while one exists, Snakemake would not notice a session's missing
# intermediate files, so a session job up to that one removes it when it starts. (A job after it
# must not: the file is built, and may be read, while that job still runs.)
COHORT_GATES = {
    "qc/intake_report.tsv": "intake_subject",
    "cohort/features.tsv": "extract_features",
    "qc/failures.tsv": "extract_features",
}


def chain_position(job: str) -> int:
    """Where a per-session job sits in SESSION_CHAIN."""
    names = [name for name, _ in SESSION_CHAIN]
    if job not in names:
        raise ValueError(f"{job!r} is not a per-session job ({names})")
    return names.index(job)


def stale_after(sd: str | Path, job: str) -> list[Path]:
    """Files and folders of the session that later jobs of the chain wrote, and the cohort gates
    built from this job's outputs."""
    position = chain_position(job)
    later = [rel for _, rels in SESSION_CHAIN[position + 1 :] for rel in rels]
    results = Path(sd).parents[2]
    gates = [gate for gate, last in COHORT_GATES.items() if chain_position(last) >= position]
    return [Path(sd) / rel for rel in later] + [results / gate for gate in gates]


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
