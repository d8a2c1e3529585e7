"""glioma-radiogenomics: multi-cohort glioma MRI + molecular tables -> validated imaging-genomics results."""

import os

from snakemake.utils import min_version, validate

from radiogenomics.config import export_package_path

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
for _section in (
    "demo",
    "preprocess",
    "segmentation",
    "features",
    "habitats",
    "cohort",
):
    if os.path.exists(f"{workflow.basedir}/workflow/schemas/{_section}.schema.yaml"):
        validate(
            config.setdefault(_section, {}),
            f"workflow/schemas/{_section}.schema.yaml",
        )

export_package_path(workflow.basedir)


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="[A-Za-z0-9]+",
    session="[A-Za-z0-9]+",


include: "workflow/rules/common.smk"


# Stages in data-flow order; each rule file is one stage of DESIGN.md.
for _stage in STAGES:
    if os.path.exists(f"{workflow.basedir}/workflow/rules/{_stage}.smk"):

        include: f"workflow/rules/{_stage}.smk"


rule all:
    default_target: True
    input:
        all_targets(),
