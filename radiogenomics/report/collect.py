"""Report stage: a stage's tables as HTML (and extra figures) in a folder the report globs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from radiogenomics.io import atomic_path
from radiogenomics.report.style import table_html, write_text

FIGURE_SUFFIXES = (".png", ".svg")
TABLE_SUFFIXES = (".tsv",)


def report_name(path: Path, root: Path) -> tuple[str, str]:
    """(group, name) of a stage file: its first sub-folder groups it (else `summary`), the rest of
    its path joined by `__` names it, e.g. idh/lasso/roc.png -> (idh, lasso__roc)."""
    rel = path.relative_to(root)
    parts = list(rel.parent.parts)
    group = parts[0] if parts else "summary"
    name = "__".join([*parts[1:], rel.stem])
    return group, name


def copy_file(src: Path, dest: Path) -> None:
    """Copy atomically so an interrupted collection never leaves a truncated figure."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def table_page(src: Path, title: str, max_rows: int) -> str:
    """A TSV rendered as an HTML page for the report."""
    try:
        df = pd.read_csv(src, sep="\t")
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    note = f"source: {src}" + ("" if len(df) else " (no rows)")
    return table_html(df, title, note=note, max_rows=max_rows)


def collect_section(
    root: str | Path,
    dest: str | Path,
    *,
    extra: list[tuple[str | Path, str, str]] = (),
    max_rows: int = 200,
) -> pd.DataFrame:
    """Render every TSV under `root` to `dest/{group}/{name}.html`; `extra` adds (source, group,
    name) figures, copied to `dest/{group}/{name}.png`. Returns what was written."""
    root, dest = Path(root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    items: list[tuple[Path, str, str]] = []
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in TABLE_SUFFIXES:
                items.append((path, *report_name(path, root)))
    items += [(Path(s), g, n) for s, g, n in extra]
    rows = []
    for src, group, name in items:
        if not src.exists() or src.stat().st_size == 0:
            continue  # placeholder of a failed subject/step: nothing to show
        if src.suffix in FIGURE_SUFFIXES:
            out = dest / group / f"{name}{src.suffix}"
            copy_file(src, out)
        else:
            out = dest / group / f"{name}.html"
            write_text(table_page(src, f"{group}: {name}", max_rows), out)
        rows.append({"source": str(src), "group": group, "name": name, "report_file": str(out)})
    return pd.DataFrame(rows, columns=["source", "group", "name", "report_file"])
