"""Scale stage: the SLURM profile on a real single-node SLURM (slurmctld + slurmd on localhost).

Starts the cluster with ../shared/scripts/start_slurm.sh, runs two demo subjects' per-subject chain
through `--profile profiles/slurm`, and checks with squeue that the jobs really went through
SLURM and that each subject's group of rules became a single SLURM job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.configs import demo_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[1]
SCRIPTS = PROJECT.parent / "shared" / "scripts"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def slurm_env():
    if (
        os.geteuid() != 0
        or not shutil.which("apt-get")
        or not (SCRIPTS / "start_slurm.sh").exists()
    ):
        pytest.skip("needs root, apt-get and ../shared/scripts/start_slurm.sh")
    res = subprocess.run(
        ["timeout", "-k", "10", "300", str(SCRIPTS / "start_slurm.sh")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    env = dict(os.environ)
    for key, value in re.findall(r"export (\w+)=(\S+)", res.stdout):
        env[key] = value.strip("'\"")
    yield env
    subprocess.run(
        ["timeout", "-k", "10", "120", str(SCRIPTS / "stop_slurm.sh")], capture_output=True, env=env
    )


def slurm_job_ids(env: dict) -> set[str]:
    out = subprocess.run(
        ["squeue", "-a", "-t", "all", "-h", "-o", "%i"], capture_output=True, text=True, env=env
    ).stdout
    return set(out.split())


def test_subject_group_is_one_slurm_job(slurm_env, tmp_path):
    config = demo_config(
        **{
            "cohorts": [
                {
                    "name": "demo_a",
                    "layout": "bids",
                    "path": "resources/demo/demo_a",
                    "labels": "resources/demo/labels/demo_a.tsv",
                    "role": "discovery",
                    "demo": True,
                }
            ],
            "demo": {
                "size": "small",
                "small_n_discovery": 2,
                "small_n_validation": 1,
                "second_session_fraction": 0.0,
                "resolution_mm": 2,
            },
            "preprocess": {"resample_mm": 2.0},
        }
    )
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    targets = [f"results/demo_a/sub-A00{i}/ses-01/prep/coreg/manifest.json" for i in (1, 2)]
    before = slurm_job_ids(slurm_env)
    res = subprocess.run(
        [
            "timeout",
            "-k",
            "10",
            "900",
            str(BIN / "snakemake"),
            "--profile",
            str(PROJECT / "profiles" / "slurm"),
            "--snakefile",
            str(PROJECT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(cfg),
            "--jobs",
            "4",
            *targets,
        ],
        capture_output=True,
        text=True,
        env=slurm_env,
        cwd=PROJECT,
    )
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    for t in targets:
        assert (tmp_path / t).stat().st_size > 0
    new_jobs = slurm_job_ids(slurm_env) - before
    # One SLURM job per subject: demo generation, intake and preprocessing run as one group; the
    # run's one atlas template job is the only other.
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    assert {job for job, _ in submitted} <= new_jobs, (submitted, new_jobs)  # squeue saw them
    groups = [slurm_log for _, slurm_log in submitted if "group_subject_" in slurm_log]
    others = [slurm_log for _, slurm_log in submitted if "group_subject_" not in slurm_log]
    assert len(groups) == 2, log[-4000:]
    assert len(others) == 1 and "resample_atlas_template" in others[0], others
    for slurm_log in groups:
        for rule in ("generate_demo_subject", "intake_subject", "preprocess_subject"):
            assert rule in slurm_log, slurm_log
