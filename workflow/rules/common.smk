"""Shared by every stage: the subject table (built once), path patterns, input helpers, and the
two registries through which each stage declares its cohort-level targets and report items.
"""

import os
from pathlib import Path

from radiogenomics.intake.discover import discover_subjects, log_refused
from radiogenomics.paths import prep_paths, subject_dir_pattern

SD = subject_dir_pattern()
# Population habitat model: written by fit_habitat_model, read by extract_features.
HAB_DIR = "results/habitats"
HABITAT_MODEL = f"{HAB_DIR}/model.joblib"
COHORTS = {c["name"]: c for c in config["cohorts"]}
FEATURE_TABLE_COHORTS = [c for c in config["cohorts"] if c["layout"] == "feature-table"]
# Stage files register here, next to their rules; `rule all` and the report only read these.
# COHORT_TARGETS: stage -> cohort-level results of the default run (the report waits for them).
# REPORT_SECTIONS: stage -> report category in which report_section shows the stage's tables.
# REPORT_TARGETS: one output of each rule that builds report items from a stage's results.
COHORT_TARGETS = {}
REPORT_SECTIONS = {}
REPORT_TARGETS = []
REPORT_DIR = "results/report"


def report_item(path, category, subcategory=None, caption=None, **extra):
    """`path` as a report item, captioned by workflow/report/{caption}.rst (by default the file's
    own stem, when that caption exists); `extra`: labels, patterns."""
    caption = caption or Path(str(path)).name.split(".")[0]
    rst = f"{workflow.basedir}/workflow/report/{caption}.rst"
    return report(
        path,
        caption=f"../report/{caption}.rst" if os.path.exists(rst) else None,
        category=category,
        subcategory=subcategory,
        **extra,
    )


def _demo_plan():
    """The demo's subjects are known from its seed before any image exists."""
    if not any(c["demo"] for c in config["cohorts"]):
        return None
    from radiogenomics.demo import plan_demo

    return plan_demo(config["demo"], config["seed"])


DEMO_PLAN = _demo_plan()
# Entries with an unusable ID are left out of the run and listed in the intake report.
SUBJECTS, REFUSED_IDS = discover_subjects(config["cohorts"], DEMO_PLAN)
log_refused(REFUSED_IDS)
# Per-job lookups go through plain dicts: a pandas row per job is slow on large DAGs.
SUBJECT_ROWS = {
    (row["cohort"], row["subject"], row["session"]): row for row in SUBJECTS.to_dict("records")
}
SITES = {name: c.get("site") or name for name, c in COHORTS.items()}


def cohort_config(cohort):
    """The validated config entry of one cohort."""
    return COHORTS[cohort]


def subject_row(wildcards):
    """The subject table row of one cohort/subject/session."""
    return SUBJECT_ROWS[(wildcards.cohort, wildcards.subject, wildcards.session)]


def subject_paths(pattern, role=None, cohort=None):
    """`pattern` formatted for every subject/session (optionally one role or cohort)."""
    rows = SUBJECTS
    if role is not None:
        rows = rows[rows["role"] == role]
    if cohort is not None:
        rows = rows[rows["cohort"] == cohort]
    return [
        pattern.format(cohort=c, subject=s, session=t)
        for c, s, t in zip(rows["cohort"], rows["subject"], rows["session"])
    ]


def per_cohort(key):
    """One cohort-config value per cohort, as a plain param (scripts pick by their wildcards)."""
    return {name: cohort[key] for name, cohort in COHORTS.items()}


def intake_inputs(wildcards):
    """Source files known at DAG time; demo subjects wait for their generator."""
    row = subject_row(wildcards)
    cohort = cohort_config(wildcards.cohort)
    if cohort["demo"]:
        return [f"{DEMO_ROOT}/.done/{wildcards.cohort}/{wildcards.subject}.done"]
    if cohort["layout"] == "tcia-dicom":
        return [row["source_dir"]]
    return sorted(row["source"].values())


def provided_labels_input(wildcards):
    """The intake manifest names a cohort's provided label image (not a declared intake output)."""
    if cohort_config(wildcards.cohort)["segmentation"] == "provided":
        return f"{SD}/anat/manifest.json".format(**dict(wildcards.items()))
    return []


def labels_table(wildcards):
    """A cohort's labels table, if it has one."""
    return cohort_config(wildcards.cohort)["labels"] or []


def intake_params_row(wildcards):
    row = subject_row(wildcards)
    keys = ("cohort", "subject", "session", "source", "source_dir", "study_day")
    return {k: row[k] for k in keys if k in row}


def stage_results():
    """Every stage's cohort-level results (not the report's own items).

    Cohort rules read every subject's intake manifest, QC metrics and feature tables, so those are
    built through them; listing them here too would add DAG edges per subject for nothing.
    """
    return [path for paths in COHORT_TARGETS.values() for path in paths]


def subject_flags(cohort):
    """Done flags of every demo subject of one cohort (DEMO_ROOT: demo.smk)."""
    subjects = sorted(set(SUBJECTS.loc[SUBJECTS["cohort"] == cohort, "subject"]))
    return [f"{DEMO_ROOT}/.done/{cohort}/{s}.done" for s in subjects]


def strategies_of_kind(*kinds):
    """Alternation of the strategy names of some kinds (STRATEGY_KIND: markers.smk), or a
    never-matching name if none."""
    names = sorted(s for s, k in STRATEGY_KIND.items() if k in kinds)
    return "|".join(names) or "no_strategy_of_this_kind"


def cnn_crops(marker, strategy):
    """The crops file of a cnn strategy (nothing for other kinds)."""
    if STRATEGY_KIND[strategy] != "cnn":
        return []
    return f"results/markers/{marker}/{strategy}/crops.npz"
