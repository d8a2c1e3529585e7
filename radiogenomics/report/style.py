"""Report stage: shared figure style (Okabe-Ito palette), atomic figure saving and HTML tables."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: report rules run on cluster nodes without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from radiogenomics import figures  # noqa: E402
from radiogenomics.io import atomic_path  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe palette; black last so it is used only for many groups.
OKABE_ITO = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
]
FLAG_COLOUR = "#D55E00"  # vermillion: outliers and failures
NEUTRAL = "#7F7F7F"


def colour_for(i: int) -> str:
    """The i-th Okabe-Ito colour (cycling)."""
    return OKABE_ITO[i % len(OKABE_ITO)]


def apply_style() -> None:
    """Matplotlib defaults readable in the report: no top/right spines, legible fonts."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 120,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save a report figure at the style's resolution (`apply_style`)."""
    figures.save_figure(fig, path, dpi=None)


def _cell(value: object, digits: int) -> str:
    """One table cell as escaped text; floats rounded, NaN blank."""
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.{digits}g}"
    if value is None or (isinstance(value, str) and value == ""):
        return ""
    return html.escape(str(value))


def table_html(
    df: pd.DataFrame,
    title: str,
    *,
    note: str = "",
    flag: pd.Series | None = None,
    max_rows: int = 500,
    digits: int = 4,
) -> str:
    """A self-contained HTML page with `df` as a table; rows where `flag` is true highlighted."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for i, (_, rec) in enumerate(shown.iterrows()):
        flagged = flag is not None and bool(flag.iloc[i])
        cls = ' class="flag"' if flagged else ""
        cells = "".join(f"<td>{_cell(v, digits)}</td>" for v in rec.tolist())
        rows.append(f"<tr{cls}>{cells}</tr>")
    extra = ""
    if len(df) > max_rows:
        extra = f"<p>Showing the first {max_rows} of {len(df)} rows; the TSV has all.</p>"
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;font-size:13px;margin:12px}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px;"
        "text-align:left}th{background:#eee;position:sticky;top:0}"
        f"tr.flag td{{background:#fbe3d4;color:#000}}tr.flag td:first-child{{border-left:4px solid "
        f"{FLAG_COLOUR}}}"
        "</style></head><body>"
        f"<h3>{html.escape(title)}</h3>{note_html}{extra}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
