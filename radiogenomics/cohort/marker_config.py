"""Markers file reading (cohort stage), light enough for the Snakefile to import at parse time.

Kept apart from `markers` (scikit-learn, matplotlib): every Snakemake start, including each SLURM
job, parses the workflow, and those imports cost about a second.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from radiogenomics.errors import ConfigError
from radiogenomics.labels import MARKERS


def load_markers(path: str | Path) -> dict[str, dict]:
    """Read config/markers.yaml (validated by workflow/schemas/markers.schema.yaml)."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    schema = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "markers.schema.yaml"
    if schema.exists():  # the Snakefile validates too; this covers library use (benchmarks)
        import jsonschema

        try:
            jsonschema.validate(doc, yaml.safe_load(schema.read_text()))
        except jsonschema.ValidationError as exc:
            where = "/".join(map(str, exc.absolute_path))
            raise ConfigError(f"{path}: {where}: {exc.message}") from exc
    markers = doc.get("markers") or {}
    unknown = sorted(set(markers) - set(MARKERS))
    if unknown:
        raise ConfigError(f"{path}: unknown marker(s) {unknown}; known: {sorted(MARKERS)}")
    return markers


def strategy_kinds(markers: dict[str, dict]) -> dict[str, str]:
    """Strategy name -> "supervised", "subtypes" or "cnn"; a name used with two kinds raises (the
    rules tell strategies apart by name)."""
    kinds: dict[str, str] = {}
    for marker, spec in markers.items():
        for name, s in (spec.get("strategies") or {}).items():
            kind = s["model"] if s["model"] in ("subtypes", "cnn") else "supervised"
            if kinds.setdefault(name, kind) != kind:
                raise ConfigError(
                    f"strategy name {name!r} is a {kinds[name]} strategy in one marker and a "
                    f"{kind} strategy in {marker}: use distinct names"
                )
    return kinds
