"""Cohort-stage configuration: schemas with defaults, markers file, the UCSF-PDGM example."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from radiogenomics.cohort.markers import load_markers, strategies_of
from radiogenomics.errors import ConfigError
from radiogenomics.labels import MARKERS


def test_cohort_schema_defaults(project_root: Path) -> None:
    cfg: dict = {}
    validate(cfg, str(project_root / "workflow/schemas/cohort.schema.yaml"))
    assert cfg["icc_threshold"] == 0.75 and cfg["n_permutations"] == 200
    assert cfg["evidence_alpha"] == 0.05 and cfg["permutation_repeats"] == 1
    assert cfg["cv"] == {"outer_folds": 5, "repeats": 5, "inner_folds": 3}
    assert cfg["min_per_class"] == 8 and cfg["bootstrap_n"] == 1000
    assert cfg["combat"] == {"enabled": True, "batch_column": "site"}
    assert cfg["markers_file"] == "config/markers.yaml"
    with pytest.raises(WorkflowError):
        validate({"icc_treshold": 0.8}, str(project_root / "workflow/schemas/cohort.schema.yaml"))


def test_markers_file_covers_every_marker(project_root: Path, tmp_path: Path) -> None:
    markers = load_markers(project_root / "config/markers.yaml")
    # +7/-10 is a WHO CNS5 typing label without an imaging hypothesis of its own.
    assert set(markers) == set(MARKERS) - {"chr7_gain_chr10_loss"}
    assert markers["idh"]["primary"] == "maps_logistic"
    assert markers["codeletion_1p19q"]["within"] == {"idh": "mutant"}
    assert [s.model for s in strategies_of(markers, "mgmt")][0] == "subtypes"
    assert markers["mgmt"]["primary"] == markers["egfr_amplification"]["primary"] == "subtypes"
    assert "cnn" in [s.model for s in strategies_of(markers, "idh")]
    assert [s.model for s in strategies_of(markers, "tert")] == ["radscore_clinical"]
    assert strategies_of(markers, "tert")[0].covariates == ("age", "sex")
    bad = tmp_path / "m.yaml"
    bad.write_text("markers:\n  idh:\n    strategies:\n      x: {model: forest, features: [a]}\n")
    with pytest.raises(ConfigError, match="forest"):
        load_markers(bad)


def test_ucsf_example_config_validates(project_root: Path) -> None:
    cfg = yaml.safe_load((project_root / "config/examples/ucsf_pdgm.yaml").read_text())
    validate(cfg, str(project_root / "workflow/schemas/config.schema.yaml"))
    validate(cfg["cohort"], str(project_root / "workflow/schemas/cohort.schema.yaml"))
    roles = {c["name"]: (c["role"], c["layout"]) for c in cfg["cohorts"]}
    assert roles == {
        "ucsfdisc": ("discovery", "feature-table"),
        "ucsfval": ("validation", "feature-table"),
    }
    ranges = [c["feature_table"]["id_range"] for c in cfg["cohorts"]]
    assert ranges == [{"min": 4, "max": 400}, {"min": 401, "max": 541}]


def test_ucsf_example_dry_run(project_root: Path, shared_data: Path) -> None:
    """The example runs through the Snakefile: cohort-stage DAG with feature-table cohorts."""
    import subprocess
    import sys

    targets = ["results/markers/idh/summary.tsv", "results/validation/idh/ucsfval/metrics.tsv",
               "results/survival/metrics.tsv"]  # fmt: skip
    snakemake = Path(sys.executable).with_name("snakemake")
    res = subprocess.run(
        [str(snakemake), "-n", "--nolock", "--configfile", "config/examples/ucsf_pdgm.yaml",
         "-c1", *targets],
        cwd=project_root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    for rule, n in (("aggregate_features", 1), ("marker_strategy", 5), ("external_validation", 1),
                    ("survival_analysis", 1)):  # fmt: skip
        assert any(line.split() == [rule, str(n)] for line in out.splitlines()), rule
    assert "intake_subject" not in out  # no images in a feature-table cohort


def test_lesion_wide_strategy_reads_whole_tumour_medians(project_root: Path) -> None:
    # ROI names contain underscores (whole_tumor), so a `[^_]+` ROI token would miss the lesion.
    from radiogenomics.cohort.common import select_features
    from radiogenomics.paths import ROIS, feature_column

    columns = [
        feature_column("lesion_wide", seq, roi, stat)
        for seq in ("adc", "rcbv", "t1ce")
        for roi in ROIS
        for stat in ("mean", "median", "p10", "p90")
    ] + [feature_column("mismatch", "all", "whole_tumor", f) for f in ("sign", "flair_t2_ratio")]
    markers = load_markers(project_root / "config/markers.yaml")
    for marker in ("idh", "codeletion_1p19q"):
        (strategy,) = [s for s in strategies_of(markers, marker) if s.name == "maps_logistic"]
        chosen = select_features(columns, strategy.features, set())
        assert sorted(chosen) == sorted(
            [
                "lesion_wide__adc__whole_tumor__median",
                "lesion_wide__rcbv__whole_tumor__median",
                "mismatch__all__whole_tumor__sign",
                "mismatch__all__whole_tumor__flair_t2_ratio",
            ]
        ), chosen
