"""README (all stages): every command line the README gives is run by a test, as written.

The commands run in a fresh project-like folder (the project's files linked into it), so paths in
them mean what they mean for a newcomer. Each command is classified below: run here in full, run
here as a dry run because a full run is another test's job (the demo runs take minutes to tens of
minutes), or needing data the user brings. A README command without a class fails the test, so a
new command gets a test with it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
ENTRY = re.compile(r"^(\./scripts/|\.venv/bin/)")

# command regex -> (how, why). how: run | dry (append -n) | covered (named test runs it in full).
CLASSES = {
    r"^\./scripts/install\.sh && \.venv/bin/snakemake --cores all --profile profiles/local$": (
        "dry",
        "README command 1; the demo run end to end: tests/test_e2e_demo.py (small demo)",
    ),
    r"^\./scripts/install\.sh && \.venv/bin/python -m pytest$": (
        "covered",
        "README command 2 is this test suite (.ci/run)",
    ),
    r"--config 'demo=\{\"size\": \"small\"\}'$": (
        "dry",
        "the small demo end to end: tests/test_e2e_demo.py",
    ),
    r"^\.venv/bin/snakemake --rulegraph": ("run", "the rule graph"),
    r"^\.venv/bin/snakemake -n --configfile my\.yaml$": ("run", "checks a cohort config"),
    r"^\.venv/bin/snakemake --profile profiles/local results/qc/intake_report\.tsv "
    r"--configfile my\.yaml$": ("run", "intake alone"),
    r"^\.venv/bin/snakemake --profile profiles/local --configfile config/examples/\w+\.yaml$": (
        "dry",
        "every example end to end: tests/test_real_examples.py",
    ),
    r"--configfile config/examples/\w+\.yaml --report results/report\.html$": (
        "covered",
        "tests/test_real_examples.py builds each example's report",
    ),
    r"^\.venv/bin/snakemake --profile profiles/slurm --group-components subject=10$": (
        "dry",
        "a real SLURM run: tests/test_slurm.py",
    ),
    r"^\.venv/bin/snakemake --profile profiles/local --report results/report\.html$": (
        "covered",
        "tests/test_e2e_demo.py builds the demo's report",
    ),
    r"^\.venv/bin/python benchmarks/summarise\.py --markdown$": ("run", "runtime table"),
    r"^\.venv/bin/python -m pytest$": ("covered", "this test suite"),
    r"^\.venv/bin/python scripts/config_docs\.py$": ("run", "regenerates config/README.md"),
    r"--unlock$": ("run", "clears a stale lock"),
}


def readme_commands(text: str) -> list[str]:
    """Command lines of the README: lines of ```bash blocks and inline `code` spans that start
    with ./scripts/ or .venv/bin/ (a trailing `# comment` removed)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        commands += [line.split("  #")[0].strip() for line in block.splitlines()]
    commands += re.findall(r"`([^`\n]+)`", text)
    return sorted({c for c in commands if ENTRY.match(c)})


def classify(command: str) -> tuple[str, str] | None:
    hits = [how for rx, how in CLASSES.items() if re.search(rx, command)]
    return hits[0] if len(hits) == 1 else None


def test_every_readme_command_has_a_test():
    commands = readme_commands(README.read_text())
    assert len(commands) >= 10, commands
    unclassified = [c for c in commands if classify(c) is None]
    assert not unclassified, f"README commands without a test (add them to CLASSES): {unclassified}"


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory, shared_data) -> Path:
    """A folder that looks like a fresh clone: the project's files linked, its own results; and
    the user's `my.yaml`, a copy of the TCGA-LGG example (its data are in ../shared)."""
    base = tmp_path_factory.mktemp("readme")
    # A clone with ../shared beside it, as CI has it.
    (base / "shared").symlink_to(shared_data.parent)
    root = base / "project"
    root.mkdir()
    for entry in PROJECT.iterdir():
        if entry.name not in {"results", "resources", "logs", ".snakemake", "benchmarks"}:
            (root / entry.name).symlink_to(entry)
    # benchmarks/ holds scripts and (per run) benchmarks/rules: a folder of links, not a link.
    (root / "benchmarks").mkdir()
    for entry in (PROJECT / "benchmarks").glob("*.py"):
        (root / "benchmarks" / entry.name).symlink_to(entry)
    shutil.copyfile(PROJECT / "config/examples/tcga_lgg.yaml", root / "my.yaml")
    return root


def shell(root: Path, command: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{PROJECT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-c", command], cwd=root, capture_output=True, text=True, timeout=timeout, env=env
    )


def runnable(how: str) -> list[str]:
    return [c for c in readme_commands(README.read_text()) if classify(c)[0] == how]


@pytest.mark.slow
@pytest.mark.parametrize("command", runnable("dry"))
def test_readme_command_dry_runs(fresh_project, command):
    # `a && b`: the install runs for real (idempotent), the workflow as a dry run.
    res = shell(fresh_project, f"{command} -n")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "Building DAG of jobs" in res.stdout + res.stderr


@pytest.mark.slow
def test_readme_commands_run_in_full(fresh_project):
    """In the README's order: check the cohort, run intake alone, the runtime table, the rule
    graph, the config reference, the unlock."""
    order = ["-n --configfile", "intake_report", "summarise", "rulegraph", "config_docs", "unlock"]
    commands = runnable("run")
    ordered = sorted(commands, key=lambda c: order.index(next(k for k in order if k in c)))
    assert len(ordered) >= 5, commands
    for command in ordered:
        if "dot -Tsvg" in command and shutil.which("dot") is None:
            command = command.split(" | dot")[0] + " > /dev/null"  # Graphviz is optional
        if "docs/rulegraph.svg" in command or "config_docs" in command:
            # Regenerating a tracked file must not change the project: write beside it instead.
            command = command.replace("> docs/rulegraph.svg", "> rulegraph.svg")
            command = command.replace("config_docs.py", "config_docs.py --check")
        res = shell(fresh_project, command)
        assert res.returncode == 0, (command, (res.stdout + res.stderr)[-3000:])
        if "intake_report" in command:
            report = fresh_project / "results/qc/intake_report.tsv"
            assert report.stat().st_size > 0
            manifests = list((fresh_project / "results/tcga_lgg").glob("sub-*/ses-01/anat/*.json"))
            assert len(manifests) >= 2
        if "summarise" in command:
            assert "intake_subject" in res.stdout
    config = yaml.safe_load((fresh_project / "my.yaml").read_text())
    assert config["cohorts"][0]["name"] == "tcga_lgg"
