"""glioma-radiogenomics: multi-cohort glioma MRI + molecular tables -> validated imaging-genomics results."""

from snakemake.utils import min_version, validate

from radiogenomics.config import export_package_path, resolve_project_files
from radiogenomics.process_tuning import tune_workflow_process

min_version("9.0")
tune_workflow_process()


# The demo's config applies only when no --configfile is given (from the project folder, whatever
# the run directory): a user's config is never merged with it, so exactly the schemas' defaults
# apply (config/README.md).
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
# Each stage validates (and defaults) its own section, so every key is documented once.
for _section in (
    "demo",
    "preprocess",
    "segmentation",
    "features",
    "habitats",
    "cohort",
    "report",
    "biopsy",
):
    validate(config.setdefault(_section, {}), f"workflow/schemas/{_section}.schema.yaml")

resolve_project_files(config, workflow.basedir)
export_package_path(workflow.basedir)


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="[A-Za-z0-9]+",
    session="[A-Za-z0-9]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/intake.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/habitats.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/markers.smk"
include: "workflow/rules/unsupervised.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/biopsy.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        stage_results(),
        REPORT_TARGETS,
        rules.check_usable_subjects.output,
