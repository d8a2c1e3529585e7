"""Shared fixtures: paths to the real public data beside the project, tiny synthetic images."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _unfreeze_collector():
    """Rule scripts run in-process freeze the garbage collector's objects (radiogenomics.runner):
    hand them back after each test so cyclic garbage of one test cannot outlive it."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real test data not found at {SHARED_DATA} (../shared/data beside the project)"
        )
    return SHARED_DATA
