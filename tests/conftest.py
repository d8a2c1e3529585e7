"""Shared fixtures: paths to the real public data beside the project, tiny synthetic images."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


# Modules that share cached workflow runs (tests/helpers/reliability.py: the bad-input run and
# the resume run are each used by both): one xdist work unit, or two workers run both twice.
SHARED_RUN_GROUPS = {
    "test_reliability_bad_input.py": "reliability_runs",
    "test_reliability_resume.py": "reliability_runs",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a slow (whole-workflow) test first, each module's order kept: the two xdist
    workers then start on the longest units and end on short ones (with --no-loadscope-reorder;
    xdist would otherwise order units by their number of tests)."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist's one-unit-per-module scheduling (module fixtures are whole workflow runs: built
    once) with the modules of SHARED_RUN_GROUPS in one unit. (xdist_group marks would say the
    same, but xdist's loadgroup rewrites a private node id that pytest 9 no longer has.)"""
    from xdist.scheduler import LoadFileScheduling

    class SharedRunScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return SHARED_RUN_GROUPS.get(Path(module).name, module)

    return SharedRunScheduling(config, log)


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
