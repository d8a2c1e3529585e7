"""Imaging chain (preprocessing): rigid co-registration of every sequence/map to the reference.

Each sequence is registered (rigid, Mattes mutual information) at its native resolution to the
reference sequence, then resampled once onto an isotropic grid aligned with the reference
(`reference_grid`). Quantitative maps are registered with their own intensities: MI copes with their
different contrast, and a per-map check falls back to the header alignment when registration makes
similarity worse (so a poor optimisation never silently degrades a map).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.errors import SubjectError
from radiogenomics.imaging.bias import head_mask
from radiogenomics.imaging.common import (
    ants_affine,
    check_image_usable,
    empty_grid_image,
    ensure_ras,
    read_manifest,
    reference_grid,
    save_on,
    seed_ants,
    sequence_paths,
    shrink_to_spacing,
    to_ants,
    write_manifest,
)
from radiogenomics.io import load_nifti, write_tsv

log = logging.getLogger(__name__)
STAGE = "coregister_to_reference"


@dataclass(frozen=True)
class RigidSettings:
    """Rigid registration settings (config `preprocess.coregistration`)."""

    metric: str = "mattes"
    sampling_rate: float = 0.1
    bins: int = 32
    iterations: tuple[int, ...] = (200, 100)
    shrink_factors: tuple[int, ...] | None = None
    level_spacing_mm: tuple[float, ...] = (8.0, 4.0)
    smoothing_sigmas: tuple[float, ...] = (2, 1)
    fallback_tolerance: float = 0.02
    min_mutual_information: float = 0.05
    # Percentiles of the foreground the metric's intensities are clipped to (never the output's).
    winsorize_percentiles: tuple[float, float] = (0.5, 99.5)

    @classmethod
    def from_config(cls, cfg: dict) -> RigidSettings:
        """Settings from config `preprocess.coregistration` (unknown keys ignored)."""
        keys = {f for f in cls.__dataclass_fields__}
        vals = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k in keys}
        return cls(**vals)

    def shrink_for(self, zooms: tuple[float, ...]) -> tuple[int, ...]:
        """Shrink factor per level: the configured ones, or those bringing the finest voxel side
        of the fixed image to `level_spacing_mm` (ANTs spares thick-slice axes)."""
        if self.shrink_factors is not None:
            return tuple(int(f) for f in self.shrink_factors)
        return tuple(shrink_to_spacing(zooms, mm) for mm in self.level_spacing_mm)


def mutual_information(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = 32) -> float:
    """Mutual information (nats) of two images within a mask (joint histogram, robust range)."""
    m = np.asarray(mask, bool)
    x, y = np.asarray(a)[m].astype(np.float64), np.asarray(b)[m].astype(np.float64)
    if x.size < 10 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rx = np.percentile(x, [0.5, 99.5])
    ry = np.percentile(y, [0.5, 99.5])
    if rx[1] <= rx[0] or ry[1] <= ry[0]:
        return 0.0
    h, _, _ = np.histogram2d(np.clip(x, *rx), np.clip(y, *ry), bins=bins, range=[rx, ry])
    p = h / h.sum()
    px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def normalised_cross_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of two images within a mask."""
    m = np.asarray(mask, bool)
    x, y = np.asarray(a)[m].astype(np.float64), np.asarray(b)[m].astype(np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def metric_intensities(data: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Intensities for the registration metric only: negatives to 0, then clipped to the
    given percentiles of the foreground (positive voxels), as antsRegistration's
    --winsorize-image-intensities does. Mattes MI bins the full intensity range, so without it
    one extreme voxel (3e38) puts every other voxel into one bin and the metric goes flat."""
    arr = np.clip(np.asarray(data, np.float32), 0, None)
    fg = arr[arr > 0]
    if fg.size == 0:
        return arr
    lo, hi = np.percentile(fg, percentiles).astype(np.float32)
    # Background stays 0 (below `lo`), so the head's outline still drives the metric.
    return np.where(arr > 0, np.clip(arr, lo, hi), np.float32(0))


def rigid_register(
    fixed: nib.Nifti1Image, moving: nib.Nifti1Image, settings: RigidSettings, workdir: Path
) -> list[str]:
    """Rigid MI registration; returns ANTs forward transforms (moving -> fixed for images).

    The metric sees winsorised intensities (`metric_intensities`); the transforms are applied
    to the original images, whose intensities are never changed."""
    import ants

    pct = tuple(settings.winsorize_percentiles)
    fx = to_ants(fixed, metric_intensities(np.asarray(fixed.dataobj), pct))
    mv = to_ants(moving, metric_intensities(np.asarray(moving.dataobj), pct))
    # Thick-slice data cannot be shrunk by 4 along z; ANTs clamps per axis, so this is safe.
    shrink = settings.shrink_for(fixed.header.get_zooms()[:3])
    if len(shrink) != len(settings.iterations):
        raise ValueError(
            f"co-registration: {len(settings.iterations)} levels of iterations but "
            f"{len(shrink)} shrink factors"
        )
    res = ants.registration(
        fixed=fx,
        moving=mv,
        type_of_transform="Rigid",
        # ANTs calls joint-histogram MI "MI" and Mattes MI "mattes".
        aff_metric="MI" if settings.metric == "mi" else settings.metric,
        aff_sampling=settings.bins,
        aff_random_sampling_rate=settings.sampling_rate,
        aff_iterations=tuple(settings.iterations),
        aff_shrink_factors=shrink,
        aff_smoothing_sigmas=tuple(settings.smoothing_sigmas),
        outprefix=str(workdir) + "/",
    )
    return list(res["fwdtransforms"])


def resample_to_grid(
    moving: nib.Nifti1Image,
    grid: nib.Nifti1Image,
    transforms: list[str],
    interpolator: str = "linear",
) -> np.ndarray:
    """Resample `moving` onto `grid` through `transforms` (empty list = header alignment)."""
    import ants

    mv = to_ants(moving)
    gd = to_ants(grid)
    if transforms:
        out = ants.apply_transforms(
            fixed=gd, moving=mv, transformlist=transforms, interpolator=interpolator
        )
    else:
        out = ants.resample_image_to_target(mv, gd, interp_type=interpolator)
    if not np.allclose(ants_affine(out), grid.affine, atol=1e-3):
        raise RuntimeError("resampled image left the target grid")
    return out.numpy().astype(np.float32)


def rigid_parameters(transform_file: str | Path) -> tuple[float, float]:
    """(rotation in degrees, translation of the rotation centre in mm) of an ANTs rigid .mat."""
    import ants

    tx = ants.read_transform(str(transform_file))
    p = np.asarray(tx.parameters, dtype=np.float64)
    rot = p[:9].reshape(3, 3)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
    return float(angle), float(np.linalg.norm(p[9:12]))


def coregister_subject(
    manifest_in: str | Path,
    manifest_out: str | Path,
    similarity_tsv: str | Path,
    *,
    reference: str = "t1ce",
    resample_mm: float = 1.0,
    settings: RigidSettings = RigidSettings(),
    seed: int = 0,
) -> pd.DataFrame:
    """Register all sequences to the reference, resample onto the reference-aligned grid."""
    upstream = read_manifest(manifest_in, stage=STAGE)
    paths = sequence_paths(manifest_in, upstream)
    if reference not in paths:
        raise SubjectError(
            f"reference sequence '{reference}' not present (have {sorted(paths)})",
            stage=STAGE,
            file=manifest_in,
        )
    seed_ants(seed)
    out_dir = Path(manifest_out).parent
    xfm_dir = out_dir.parent / "xfm"
    xfm_dir.mkdir(parents=True, exist_ok=True)

    ref_img = ensure_ras(load_nifti(paths[reference], stage=STAGE, what=f"{reference} image"))
    check_image_usable(np.asarray(ref_img.dataobj), stage=STAGE, file=paths[reference])
    aff, shape = reference_grid(ref_img, float(resample_mm))
    grid = empty_grid_image(aff, shape, like=ref_img)
    ref_on_grid = resample_to_grid(ref_img, grid, [])
    save_on(ref_on_grid, grid, out_dir / f"{reference}.nii.gz")
    mask = head_mask(ref_on_grid)

    rows = [
        {
            "sequence": reference,
            "method": "reference",
            "mi_before": np.nan,
            "mi_after": mutual_information(ref_on_grid, ref_on_grid, mask, settings.bins),
            "ncc_before": np.nan,
            "ncc_after": 1.0,
            "rotation_deg": 0.0,
            "translation_mm": 0.0,
        }
    ]
    written = {reference: f"{reference}.nii.gz"}
    transforms: dict[str, str] = {}
    for seq, path in paths.items():
        if seq == reference:
            continue
        img = ensure_ras(load_nifti(path, stage=STAGE, what=f"{seq} image"))
        check_image_usable(np.asarray(img.dataobj), stage=STAGE, file=path)
        before = resample_to_grid(img, grid, [])
        tmp = Path(tempfile.mkdtemp(prefix=f"coreg_{seq}_"))
        try:
            try:
                fwd = rigid_register(ref_img, img, settings, tmp)
            except Exception as exc:  # ANTs raises RuntimeError for degenerate inputs
                raise SubjectError(
                    f"rigid registration of {seq} failed: {exc}", stage=STAGE, file=path
                ) from exc
            after = resample_to_grid(img, grid, fwd)
            mi_b = mutual_information(ref_on_grid, before, mask, settings.bins)
            mi_a = mutual_information(ref_on_grid, after, mask, settings.bins)
            method = "rigid"
            if mi_a < mi_b - settings.fallback_tolerance:
                log.warning(
                    "%s: registration lowered MI (%.3f -> %.3f); keeping header alignment",
                    seq,
                    mi_b,
                    mi_a,
                )
                after, method = before, "header_fallback"
            if max(mi_a, mi_b) < settings.min_mutual_information:
                raise SubjectError(
                    f"{seq} does not register to {reference}: MI {max(mi_a, mi_b):.3f} < "
                    f"{settings.min_mutual_information} (blank, corrupt or wrong image?)",
                    stage=STAGE,
                    file=path,
                )
            xfm = xfm_dir / f"{seq}_to_{reference}.mat"
            if method == "rigid":
                shutil.copyfile(fwd[0], xfm)
                angle, trans = rigid_parameters(xfm)
            else:
                _write_identity(xfm)
                angle, trans = 0.0, 0.0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        save_on(after, grid, out_dir / f"{seq}.nii.gz")
        written[seq] = f"{seq}.nii.gz"
        transforms[seq] = str(Path("..") / "xfm" / xfm.name)
        rows.append(
            {
                "sequence": seq,
                "method": method,
                "mi_before": mi_b,
                "mi_after": mi_a,
                "ncc_before": normalised_cross_correlation(ref_on_grid, before, mask),
                "ncc_after": normalised_cross_correlation(ref_on_grid, after, mask),
                "rotation_deg": angle,
                "translation_mm": trans,
            }
        )
        log.info(
            "%s -> %s: %s, MI %.3f -> %.3f, rot %.2f deg, trans %.2f mm",
            seq,
            reference,
            method,
            mi_b,
            mi_a,
            angle,
            trans,
        )
    table = pd.DataFrame(rows)
    write_tsv(table, similarity_tsv)
    write_manifest(
        manifest_out,
        upstream,
        written,
        reference=reference,
        resample_mm=float(resample_mm),
        transforms=transforms,
        similarity="similarity.tsv",
    )
    return table


def _write_identity(path: Path) -> None:
    """Write an identity ANTs affine transform."""
    import ants

    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    ants.write_transform(tx, str(path))
