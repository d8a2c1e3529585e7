"""Documentation: config/README.md is exactly what the schemas generate, and covers every key."""

from __future__ import annotations

import yaml

from radiogenomics.report.config_docs import config_docs, schema_rows, type_text


def test_committed_config_readme_matches_the_schemas(project_root):
    generated = config_docs(project_root / "workflow" / "schemas")
    committed = (project_root / "config" / "README.md").read_text()
    assert committed == generated, (
        "config/README.md is stale: run .venv/bin/python scripts/config_docs.py"
    )


def test_every_schema_key_is_documented(project_root):
    text = (project_root / "config" / "README.md").read_text()
    for path in sorted((project_root / "workflow" / "schemas").glob("*.schema.yaml")):
        for key, *_ in schema_rows(yaml.safe_load(path.read_text())):
            assert f"| `{key}` |" in text, f"{path.name}: {key} missing from config/README.md"


def test_rows_flatten_nesting_and_show_defaults():
    schema = {
        "type": "object",
        "required": ["items"],
        "properties": {
            "k": {
                "oneOf": [{"type": "integer"}, {"const": "auto"}],
                "default": 3,
                "description": "a | b",
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"enum": ["x", "y"], "default": "x"}},
                },
            },
            "sub": {
                "type": "object",
                "default": {},
                "properties": {"seed": {"type": "integer", "minimum": 0, "default": 1}},
            },
        },
    }
    rows = schema_rows(schema)
    assert rows == [
        ("k", 'integer or `"auto"`', "`3`", "a \\| b"),
        ("items", "array of object", "required", ""),
        ("items[].name", 'one of: "x", "y"', '`"x"`', ""),
        ("sub", "object", "`{}`", ""),
        ("sub.seed", "integer (minimum 0)", "`1`", ""),
    ]
    assert type_text({"type": ["string", "null"]}) == "string or null"
