"""Figures for every stage: saved atomically as byte-stable PNGs, and message figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run on cluster nodes without a display

import matplotlib.pyplot as plt  # noqa: E402

from radiogenomics.io import atomic_path  # noqa: E402


def save_figure(
    fig: plt.Figure, path: str | Path, *, dpi: float | None = 110, bbox_inches: str | None = "tight"
) -> None:
    """Save `fig` atomically as PNG without a timestamp (reruns are byte-identical); close it.

    `dpi=None` takes matplotlib's `savefig.dpi` (the report's style sets it)."""
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp, format="png", dpi=dpi, bbox_inches=bbox_inches, metadata={"Software": None}
        )
    plt.close(fig)


def _literal(text: str) -> str:
    """Messages quote regex patterns: an escaped '$' shows as itself instead of starting
    mathtext (`parse_math=False` is not honoured when matplotlib wraps text)."""
    return text.replace("$", r"\$")


def message_figure(path: str | Path, message: str, title: str = "") -> None:
    """A figure that states why there is nothing to plot (outputs exist even when a step cannot
    run, e.g. too few subjects or every subject failed)."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    if title:
        ax.set_title(_literal(title))
    ax.text(0.5, 0.5, _literal(message), ha="center", va="center", wrap=True, fontsize=9)
    save_figure(fig, path)
