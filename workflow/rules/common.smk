"""Shared by every stage: the subject table (built once), path patterns and input helpers."""

import json
import os
from pathlib import Path

import pandas as pd

from radiogenomics.intake.discover import build_subject_table
from radiogenomics.paths import prep_paths

# Jobs inherit this environment. glibc hands every array over 32 MB back to the OS and zeroes
# fresh pages for the next one; HD-BET and ANTs allocate hundreds of them per session (3 of 29
# CPU-s of preprocess_subject were page zeroing). Keeping freed memory in the heap removes that
# for ~10 % more peak RSS. A value the user exports wins.
for _var, _value in {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**32),
}.items():
    os.environ.setdefault(_var, _value)

SD = "results/{cohort}/sub-{subject}/ses-{session}"
# Population habitat model: written by fit_habitat_model, read by extract_features.
HAB_DIR = "results/habitats"
HABITAT_MODEL = f"{HAB_DIR}/model.joblib"
COHORTS = {c["name"]: c for c in config["cohorts"]}


def _demo_plan():
    """The demo's subjects are known from its seed before any image exists."""
    if not any(c.get("demo") for c in config["cohorts"]):
        return None
    from radiogenomics.demo import plan_demo

    return plan_demo(config["demo"], config["seed"])


DEMO_PLAN = _demo_plan()
SUBJECTS = build_subject_table(config["cohorts"], DEMO_PLAN)
# Per-job lookups go through plain dicts: a pandas row per job cost a 1,000-subject DAG ~0.5 s.
SUBJECT_ROWS = {
    (row["cohort"], row["subject"], row["session"]): row
    for row in SUBJECTS.to_dict("records")
}


def cohort_config(cohort):
    """The validated config entry of one cohort."""
    return COHORTS[cohort]


def subject_row(wildcards):
    """The subject table row of one cohort/subject/session."""
    return SUBJECT_ROWS[(wildcards.cohort, wildcards.subject, wildcards.session)]


def subject_paths(pattern, role=None, cohort=None, rows=None):
    """`pattern` formatted for every subject/session (optionally one role or cohort)."""
    rows = SUBJECTS if rows is None else rows
    if role is not None:
        rows = rows[rows["role"] == role]
    if cohort is not None:
        rows = rows[rows["cohort"] == cohort]
    return [
        pattern.format(cohort=c, subject=s, session=t)
        for c, s, t in zip(rows["cohort"], rows["subject"], rows["session"])
    ]


def intake_inputs(wildcards):
    """Source files known at DAG time; demo subjects wait for their generator."""
    row = subject_row(wildcards)
    cohort = cohort_config(wildcards.cohort)
    if cohort.get("demo"):
        return [
            f"{config['demo'].get('root', 'resources/demo')}/.done/{wildcards.cohort}/{wildcards.subject}.done"
        ]
    if cohort["layout"] == "tcia-dicom":
        return [row["source_dir"]]
    return sorted(row["source"].values())


def provided_labels_input(wildcards):
    """The intake manifest names a cohort's provided label image (not a declared intake output)."""
    if cohort_config(wildcards.cohort).get("segmentation") == "provided":
        return f"{SD}/anat/manifest.json".format(**dict(wildcards.items()))
    return []


def intake_params_row(wildcards):
    row = subject_row(wildcards)
    return {k: row[k] for k in ("cohort", "subject", "session", "source", "source_dir")}


def stage_enabled(stage):
    return Path(workflow.basedir, "workflow", "rules", f"{stage}.smk").exists()


def all_targets():
    """Targets of the default run: cohort results, and per-subject outputs no cohort rule reads.

    Cohort rules read every subject's intake manifest, QC metrics and feature tables, so those are
    built through them; listing them here too would add ~10 DAG edges per subject for nothing.
    """
    targets = []
    if stage_enabled("segment") and not stage_enabled("report"):
        targets.append(f"{SD}/qc/metrics.tsv")
    if stage_enabled("features") and not stage_enabled("cohort"):
        targets += [
            f"{SD}/features/{fam}.tsv" for fam in config["features"]["families"]
        ]
    per_subject = [p for t in targets for p in subject_paths(t)]
    cohort_level = ["results/qc/intake_report.tsv"]
    for stage, outs in COHORT_TARGETS.items():
        if stage_enabled(stage):
            cohort_level += outs
    return per_subject + cohort_level


# Stage files register their cohort-level targets here (stage -> list of paths).
COHORT_TARGETS = {}
