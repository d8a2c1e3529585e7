"""Report stage: read back what a built Snakemake HTML report contains (used by the tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

# The data blocks are inline scripts `<script id="results">var results = {...};</script>`; the
# same names also occur in the bundled JavaScript, so anchor on the script id.
_VAR = r'<script id="{name}">\s*var\s+{name}\s*=\s*'


def _embedded_json(text: str, name: str) -> object:
    """The JSON value assigned to `var <name> = ...` in the report's inline scripts."""
    match = re.search(_VAR.format(name=re.escape(name)), text)
    if match is None:
        raise ValueError(f"no 'var {name}' in the report; is this a Snakemake HTML report?")
    value, _ = json.JSONDecoder().raw_decode(text, match.end())
    return value


def report_results(html_path: str | Path) -> dict[str, dict]:
    """Every result item of the report (path -> name, caption, mime type, ...)."""
    return _embedded_json(Path(html_path).read_text(encoding="utf-8"), "results")


def report_categories(html_path: str | Path) -> dict[str, int]:
    """Number of result items per report category (categories without items are absent)."""
    cats = _embedded_json(Path(html_path).read_text(encoding="utf-8"), "categories")
    return {name: sum(len(items) for items in subcats.values()) for name, subcats in cats.items()}
