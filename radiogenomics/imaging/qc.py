"""Imaging chain (QC): per-subject overlay figure and metrics table with range flags."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from scipy import ndimage  # noqa: E402

from radiogenomics.errors import SubjectError  # noqa: E402
from radiogenomics.figures import save_figure  # noqa: E402
from radiogenomics.imaging.common import read_manifest, sequence_paths, voxel_sizes  # noqa: E402
from radiogenomics.imaging.coregister import (  # noqa: E402
    mutual_information,
    normalised_cross_correlation,
)
from radiogenomics.io import load_nifti, read_tsv, write_tsv  # noqa: E402

log = logging.getLogger(__name__)
STAGE = "qc_subject"
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
LABEL_COLOURS = {1: "#D55E00", 2: "#56B4E9", 3: "#F0E442"}
LABEL_NAMES = {1: "necrosis / non-enhancing core", 2: "oedema", 3: "enhancing"}
MASK_COLOUR = "#009E73"
DEFAULT_RANGES = {
    "brain_volume_ml": [800.0, 2200.0],
    "mask_border_fraction": [0.0, 0.01],
    "tumour_outside_brain_fraction": [0.0, 0.05],
    "whole_tumor_ml": [0.0, 500.0],
    "mi": [0.1, 100.0],
}


def border_fraction(mask: np.ndarray) -> float:
    """Fraction of mask voxels lying on the outer faces of the volume (a cut-off brain)."""
    m = np.asarray(mask, bool)
    if m.sum() == 0:
        return 0.0
    border = np.zeros_like(m)
    for ax in range(m.ndim):
        sl = [slice(None)] * m.ndim
        sl[ax] = 0
        border[tuple(sl)] = True
        sl[ax] = -1
        border[tuple(sl)] = True
    return float((m & border).sum() / m.sum())


def tumour_volumes(labels: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Volumes (ml) of the BraTS subregions and their union."""
    lab = np.asarray(labels).astype(np.int16)
    vols = {"necrosis_ml": 1, "edema_ml": 2, "enhancing_ml": 3}
    out = {k: float((lab == v).sum() * voxel_ml) for k, v in vols.items()}
    out["whole_tumor_ml"] = float((lab > 0).sum() * voxel_ml)
    return out


def flag_metrics(metrics: dict[str, float], ranges: dict[str, list[float]]) -> list[str]:
    """Names of metrics outside their configured [low, high] range; `mi` covers every `mi_*`."""
    flags = []
    for name, value in metrics.items():
        key = name if name in ranges else ("mi" if name.startswith("mi_") else None)
        if key is None or value is None or not np.isfinite(value):
            continue
        lo, hi = ranges[key]
        if value < lo:
            flags.append(f"{name}_low")
        elif value > hi:
            flags.append(f"{name}_high")
    return flags


def slice_centre(labels: np.ndarray, brain: np.ndarray) -> tuple[int, int, int]:
    """Voxel through which to cut: tumour centre of mass, else brain centre."""
    region = labels > 0 if np.any(labels > 0) else brain
    if not np.any(region):
        return tuple(s // 2 for s in labels.shape)
    return tuple(int(round(c)) for c in ndimage.center_of_mass(region))


def plot_overlay(
    images: dict[str, np.ndarray],
    brain: np.ndarray,
    labels: np.ndarray,
    centre: tuple[int, int, int],
    spacing: np.ndarray,
    path: str | Path,
    title: str = "",
) -> None:
    """Rows = images, columns = axial/coronal/sagittal through `centre`; mask contour + labels."""
    cmap = ListedColormap([LABEL_COLOURS[k] for k in (1, 2, 3)])
    i, j, k = centre
    planes = [
        ("axial", lambda a: a[:, :, k], (spacing[0], spacing[1])),
        ("coronal", lambda a: a[:, j, :], (spacing[0], spacing[2])),
        ("sagittal", lambda a: a[i, :, :], (spacing[1], spacing[2])),
    ]
    fig, axes = plt.subplots(len(images), 3, figsize=(10, 3.4 * len(images)), squeeze=False)
    for r, (name, img) in enumerate(images.items()):
        vals = img[brain] if brain.any() else img.ravel()
        lo, hi = np.percentile(vals, [1, 99]) if vals.size else (0, 1)
        for c, (plane, cut, sp) in enumerate(planes):
            ax = axes[r, c]
            aspect = sp[1] / sp[0]
            ax.imshow(
                cut(img).T,
                origin="lower",
                cmap="gray",
                vmin=lo,
                vmax=hi,
                aspect=aspect,
                interpolation="nearest",
            )
            lab = cut(labels).T.astype(float)
            ax.imshow(
                np.ma.masked_where(lab == 0, lab - 1),
                origin="lower",
                cmap=cmap,
                vmin=0,
                vmax=2,
                alpha=0.45,
                aspect=aspect,
                interpolation="nearest",
            )
            ax.contour(
                cut(brain).T.astype(float), levels=[0.5], colors=[MASK_COLOUR], linewidths=0.8
            )
            ax.set_title(f"{name} {plane}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if plane != "sagittal":
                ax.text(0.98, 0.02, "R", color="w", transform=ax.transAxes, ha="right", fontsize=8)
    handles = [Patch(color=LABEL_COLOURS[v], label=LABEL_NAMES[v]) for v in (1, 2, 3)]
    handles.append(Patch(edgecolor=MASK_COLOUR, facecolor="none", label="brain mask"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    save_figure(fig, path, dpi=80, bbox_inches=None)


def qc_subject(
    prep_manifest: str | Path,
    coreg_manifest: str | Path,
    brain_mask: str | Path,
    tumour_labels: str | Path,
    similarity_tsv: str | Path,
    overlay_png: str | Path,
    metrics_tsv: str | Path,
    *,
    ranges: dict[str, list[float]] | None = None,
    overlay_sequences: tuple[str, ...] = ("t1ce", "flair"),
) -> pd.DataFrame:
    """Write the QC overlay and a one-row metrics table (with `flags`) for one subject."""
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    manifest = read_manifest(prep_manifest, stage=STAGE)
    # Show the co-registered (not yet normalised) images: the skull outside the mask is what a
    # reviewer needs to judge the stripping; MI within the brain is the same either way.
    coreg = read_manifest(coreg_manifest, stage=STAGE)
    paths = sequence_paths(coreg_manifest, coreg)
    mask_img = load_nifti(brain_mask, stage=STAGE, what="brain mask")
    brain = np.asarray(mask_img.dataobj) > 0
    lab_img = load_nifti(tumour_labels, stage=STAGE, what="tumour labels")
    labels = np.rint(np.asarray(lab_img.dataobj)).astype(np.int16)
    if labels.shape != brain.shape or not np.allclose(lab_img.affine, mask_img.affine, atol=1e-3):
        raise SubjectError(
            f"tumour labels grid {labels.shape} differs from brain mask {brain.shape}",
            stage=STAGE,
            file=tumour_labels,
        )
    spacing = voxel_sizes(mask_img.affine)
    voxel_ml = float(np.prod(spacing)) / 1000
    images = {
        s: np.asarray(load_nifti(p, stage=STAGE).dataobj, np.float32) for s, p in paths.items()
    }
    ref = manifest.get("reference") or next(iter(images))
    metrics: dict[str, float] = {
        "brain_volume_ml": float(brain.sum() * voxel_ml),
        "mask_border_fraction": border_fraction(brain),
        **tumour_volumes(labels, voxel_ml),
        "tumour_outside_brain_fraction": float(
            (labels > 0)[~brain].sum() / max((labels > 0).sum(), 1)
        ),
    }
    sim = (
        read_tsv(similarity_tsv).set_index("sequence")
        if Path(similarity_tsv).stat().st_size
        else pd.DataFrame()
    )
    for seq, img in images.items():
        if seq == ref:
            continue
        metrics[f"mi_{seq}"] = mutual_information(images[ref], img, brain)
        metrics[f"ncc_{seq}"] = normalised_cross_correlation(images[ref], img, brain)
        if seq in sim.index:
            metrics[f"mi_gain_{seq}"] = float(sim.loc[seq, "mi_after"] - sim.loc[seq, "mi_before"])
    flags = flag_metrics(metrics, ranges)
    row = {k: manifest.get(k, "") for k in ("cohort", "subject", "session")}
    row.update(metrics)
    row["flags"] = ";".join(flags)
    table = pd.DataFrame([row])
    write_tsv(table, metrics_tsv)
    shown = {s: images[s] for s in overlay_sequences if s in images} or {ref: images[ref]}
    who = " / ".join(str(row[k]) for k in ("cohort", "subject", "session"))
    plot_overlay(
        shown,
        brain,
        labels,
        slice_centre(labels, brain),
        spacing,
        overlay_png,
        title=f"{who}  brain {metrics['brain_volume_ml']:.0f} ml"
        + (f"  FLAGS: {row['flags']}" if flags else ""),
    )
    if flags:
        log.warning("QC flags: %s", row["flags"])
    return table
