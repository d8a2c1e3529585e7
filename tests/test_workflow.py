"""Workflow-level checks: config validation, lint/format, conda envs, dry runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args: str, cwd: Path = PROJECT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tcga_config() -> dict:
    return yaml.safe_load((PROJECT / "config" / "examples" / "tcga_lgg.yaml").read_text())


def test_default_config_dry_run_builds():
    res = snakemake("-n", "--quiet", "rules")
    assert res.returncode == 0, res.stderr[-3000:]


def test_tcga_example_dry_run(shared_data):
    res = snakemake("-n", "--forceall", "--configfile", "config/examples/tcga_lgg.yaml")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "intake_subject" in res.stdout


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update({"sede": 1}), "sede"),
        (lambda c: c["cohorts"][0].update({"segmentaton": "provided"}), "segmentaton"),
        (lambda c: c["cohorts"][0].update({"role": "training"}), "training"),
        (lambda c: c.update({"seed": "abc"}), "abc"),
    ],
)
def test_config_typo_fails_before_any_job_naming_the_key(tmp_path, mutate, expected):
    config = tcga_config()
    mutate(config)
    res = snakemake("-n", "--configfile", str(write_config(tmp_path, config)))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert expected in out and "validat" in out.lower()
    assert "intake_subject" not in out  # stopped before any job was scheduled


def test_every_conda_env_referenced_exists_and_parses():
    referenced = set()
    for smk in (PROJECT / "workflow" / "rules").glob("*.smk"):
        referenced |= set(re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()))
    assert referenced, "no rule declares a conda env"
    for rel in referenced:
        env = (PROJECT / "workflow" / "rules" / rel).resolve()
        assert env.exists(), rel
        spec = yaml.safe_load(env.read_text())
        assert "dependencies" in spec and any(
            isinstance(d, dict) and "pip" in d for d in spec["dependencies"]
        )


def test_every_rule_declares_log_benchmark_resources_conda():
    text = "\n".join(p.read_text() for p in (PROJECT / "workflow" / "rules").glob("*.smk"))
    rules = re.split(r"\n(?=rule |checkpoint )", text)
    for block in rules:
        if not block.startswith(("rule ", "checkpoint ")):
            continue
        name = block.split()[1].rstrip(":")
        for key in ("log:", "benchmark:", "threads:", "resources:", "conda:", "mem_mb", "runtime"):
            assert key in block, f"rule {name} lacks {key}"


def test_lint_is_clean():
    res = snakemake("--lint")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]


def test_snakefmt_is_clean():
    res = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]


def test_ruff_is_clean():
    res = subprocess.run(
        [str(BIN / "ruff"), "check", "radiogenomics", "scripts", "tests", "benchmarks"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:]


def test_every_name_a_script_reads_is_declared_by_its_rule():
    """`sm.input.x`, `sm.params.y`, `sm.output.z` in a rule's script exist in the rule."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ResourceSettings

    methods = {"items", "keys", "get"}
    with SnakemakeApi() as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(cores=1), snakefile=PROJECT / "Snakefile"
        )
        wf.dag()  # parses the Snakefile
        rules = [r for r in wf._workflow.rules if r.script]
    assert rules
    missing = []
    for rule in rules:
        script = (PROJECT / "workflow" / "rules" / rule.script).resolve().read_text()
        declared = {
            "input": set(rule.input._names),
            "output": set(rule.output._names),
            "params": set(rule.params._names),
            "wildcards": set(rule.wildcard_names),
        }
        for kind, name in re.findall(
            r"\b(?:sm|snakemake)\.(input|output|params|wildcards)\.(\w+)", script
        ):
            if name not in declared[kind] | methods:
                missing.append(f"{rule.name}: {kind}.{name}")
    assert not missing, missing
