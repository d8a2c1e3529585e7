"""Architecture (all stages): the package's imports follow the flow of the pipeline.

A stage may import the foundation modules and earlier stages, never a later one, and no module
imports itself back through a circle; `radiogenomics.jobs` sits above every stage, like the
workflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "radiogenomics"
FOUNDATION = {
    "radiogenomics",
    "errors",
    "io",
    "paths",
    "config",
    "process_tuning",
    "figures",
    "runner",
    "templates",
    "labels",
}
STAGES = [
    "demo",
    "intake",
    "imaging",
    "physiology",
    "segmentation",
    "features",
    "habitats",
    "deep",  # the cnn model library; the cohort stage's cnn strategy uses it
    "cohort",
    "biopsy",
    "report",
]
ORDER = {**dict.fromkeys(FOUNDATION, 0), **{s: i + 1 for i, s in enumerate(STAGES)}, "jobs": 99}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at top level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n for n in names if n.startswith("radiogenomics")}
        graph[module_name(path)] = found
    modules = set(graph)
    # `from radiogenomics.x import name` names a function, not a module: keep real modules only.
    return {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "radiogenomics"


def test_every_package_module_belongs_to_a_known_stage():
    unknown = {stage_of(m) for m in imports()} - set(ORDER)
    assert not unknown, f"add {unknown} to FOUNDATION or STAGES"


def test_no_stage_imports_a_later_one():
    bad = [
        f"{m} -> {d}"
        for m, deps in imports().items()
        for d in deps
        if ORDER[stage_of(d)] > ORDER[stage_of(m)]
    ]
    assert not bad, bad


def test_no_import_circle():
    graph = imports()
    # Package __init__ files re-export their own modules; a circle through one still counts.
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):
                continue  # a package importing its own submodule
            if state.get(d) == 1:
                pytest.fail(" -> ".join([*trail, m, d]))
            if d not in state:
                visit(d, [*trail, m])
        state[m] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
