"""Demo cohort generator (foundation stage): two-site synthetic glioma MRI with planted truth."""

from radiogenomics.demo.generate import generate_subject, write_demo_tables
from radiogenomics.demo.plan import cohort_sizes, labels_table, plan_demo, resolve_config

__all__ = [
    "cohort_sizes",
    "generate_subject",
    "labels_table",
    "plan_demo",
    "resolve_config",
    "write_demo_tables",
]
