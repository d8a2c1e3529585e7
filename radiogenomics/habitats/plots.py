"""Habitats stage: figures (per-subject habitat overlay, spatiotemporal forest plot)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from radiogenomics.figures import save_figure  # noqa: E402

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
NAMED_COLOURS = {
    "hypervascular_cellular": "#D55E00",  # vermillion
    "hypovascular_cellular": "#0072B2",  # blue
    "nonviable": "#F0E442",  # yellow
}
GENERIC_COLOURS = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#CC79A7",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#000000",
]


def habitat_colours(names: list[str] | tuple[str, ...]) -> list[str]:
    """Colour of each habitat name (named habitats fixed, generic ones from the palette)."""
    generic = iter(c for c in GENERIC_COLOURS if c not in {NAMED_COLOURS.get(n) for n in names})
    return [NAMED_COLOURS.get(n) or next(generic) for n in names]


def tumour_centre(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel index of the ROI's centre of mass (the volume centre when the ROI is empty)."""
    if not mask.any():
        return tuple(int(s // 2) for s in mask.shape)
    return tuple(int(round(float(c))) for c in np.argwhere(mask).mean(axis=0))


def plot_overlay(
    background: np.ndarray | None,
    codes: np.ndarray,
    names: list[str] | tuple[str, ...],
    path: str | Path,
    title: str = "",
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> None:
    """Habitat colours over the background (T1ce) in three planes through the tumour centre."""
    bg = background if background is not None else np.zeros(codes.shape, np.float32)
    i, j, k = tumour_centre(codes > 0)
    finite = bg[np.isfinite(bg)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    cmap = ListedColormap(habitat_colours(names) or ["#000000"])
    # RAS voxel order: show with anterior/superior up.
    planes = [
        ("axial", bg[:, :, k].T, codes[:, :, k].T, spacing[1] / spacing[0]),
        ("coronal", bg[:, j, :].T, codes[:, j, :].T, spacing[2] / spacing[0]),
        ("sagittal", bg[i, :, :].T, codes[i, :, :].T, spacing[2] / spacing[1]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.2))
    for ax, (label, b, c, aspect) in zip(axes, planes, strict=True):
        ax.imshow(
            b, cmap="gray", origin="lower", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect
        )
        over = np.ma.masked_where(c == 0, c.astype(float) - 1)
        ax.imshow(
            over,
            cmap=cmap,
            origin="lower",
            vmin=-0.5,
            vmax=max(len(names), 1) - 0.5,
            alpha=0.65,
            interpolation="nearest",
            aspect=aspect,
        )
        ax.set_title(label)
        ax.axis("off")
    handles = [
        Patch(facecolor=col, alpha=0.65, label=n.replace("_", " "))
        for n, col in zip(names, habitat_colours(names), strict=True)
    ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(title or "habitats")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    save_figure(fig, path, dpi=100, bbox_inches=None)


def plot_forest(or_table: pd.DataFrame, hr_table: pd.DataFrame, path: str | Path) -> None:
    """Forest plot: per-habitat OR (progression) and HR (PFS) per SD of change with 95 % CI."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * max(len(or_table), len(hr_table), 3) + 1.8))
    for ax, table, est, title in (
        (axes[0], or_table, "odds_ratio", "progression: OR per SD of change"),
        (axes[1], hr_table, "hazard_ratio", "PFS: HR per SD of change"),
    ):
        t = table.dropna(subset=[est]) if est in table else pd.DataFrame()
        if t.empty:
            ax.text(0.5, 0.5, "not estimable", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            ax.set_title(title)
            continue
        labels = [f"{r.habitat} [{r.change}] ({r.scope})" for r in t.itertuples()]
        y = np.arange(len(t))[::-1]
        val = t[est].to_numpy(float)
        lo = np.clip(t["ci_low"].to_numpy(float), 1e-3, None)
        hi = np.clip(t["ci_high"].to_numpy(float), None, 1e3)
        ax.errorbar(
            val,
            y,
            xerr=[val - np.minimum(lo, val), np.maximum(hi, val) - val],
            fmt="s",
            color="#0072B2",
            capsize=3,
        )
        ax.axvline(1.0, color="grey", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_yticks(y, labels, fontsize=8)
        for yy, p in zip(y, t["p"].to_numpy(float), strict=True):
            ax.annotate(
                f"p={p:.3g}",
                (1.02, yy),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                va="center",
            )
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100, bbox_inches=None)
