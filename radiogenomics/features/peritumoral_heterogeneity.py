"""Features stage: the peritumoural heterogeneity index (PHI) of a session with a raw DSC series.

The review's EGFRvIII finding (Akbari et al. 2014, Bakas et al. 2017): the DSC time-signal
curves of the immediate and the distant peritumoural oedema look alike when the tumour infiltrates
deeply. `radiogenomics.physiology.phi` measures it; this module runs it on a session. The curves
stay on the series' own grid (they are never resampled): the two peritumoural rings (prep grid)
are carried onto it through the inverse of the rigid transform that registered the DSC-derived
rCBV to the reference sequence (`prep/xfm/rcbv_to_{reference}.mat`), linear interpolation of the
mask, kept where > 0.5. A session without a raw DSC series, or whose rCBV was provided instead of
computed from the series (no transform known for the series), gets NaN and a qc_reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.features.common import QC
from radiogenomics.io import load_nifti, load_nifti_4d, read_json
from radiogenomics.paths import feature_column
from radiogenomics.physiology.phi import peritumoral_heterogeneity_index

log = logging.getLogger(__name__)
FAMILY = "peritumoral_heterogeneity"
NAMES = ("phi_distance", "phi_homogeneity", "peak_drop_ratio", "near_voxels", "far_voxels")
RINGS = ("peritumoral_near", "peritumoral_far")


def phi_columns(values: Mapping[str, float] | None) -> dict[str, float]:
    """`peritumoral_heterogeneity__dsc__peritumoral__{name}` (NaN without values)."""
    return {
        feature_column(FAMILY, "dsc", "peritumoral", n): (
            float(values[n]) if values is not None else np.nan
        )
        for n in NAMES
    }


def mask_on_series_grid(
    mask_path: str | Path, series: nib.Nifti1Image, transform: str | Path
) -> np.ndarray:
    """A prep-grid mask resampled onto the series' 3-D grid through the inverse of
    `transform` (series -> reference, as the co-registration step wrote it)."""
    import ants

    from radiogenomics.imaging.common import to_ants

    mask = load_nifti(mask_path, stage=FAMILY, what="peritumoural ring")
    grid = nib.Nifti1Image(np.zeros(series.shape[:3], np.float32), series.affine)
    moved = ants.apply_transforms(
        fixed=to_ants(grid),
        moving=to_ants(mask, np.asarray(mask.dataobj, np.float32)),
        transformlist=[str(transform)],
        whichtoinvert=[True],
        interpolator="linear",
    )
    return moved.numpy() > 0.5


def series_and_transform(sd: Path, qc: QC) -> tuple[Path, Path] | None:
    """The session's raw DSC series and its transform to the reference, or None with a reason."""
    anat = read_json(sd / "anat" / "manifest.json") if (sd / "anat/manifest.json").exists() else {}
    dsc = anat.get("acquisitions", {}).get("dsc")
    if not dsc:
        qc.add("no raw DSC series: peritumoural heterogeneity not measured")
        return None
    maps = sd / "maps" / "manifest.json"
    source = read_json(maps).get("map_sources", {}).get("rcbv", "") if maps.exists() else ""
    transforms = sorted((sd / "prep" / "xfm").glob("rcbv_to_*.mat"))
    if not source.startswith("computed from dsc") or len(transforms) != 1:
        qc.add(
            "rCBV not computed from the DSC series (provided map): the series' registration to "
            "the reference is unknown, peritumoural heterogeneity not measured",
            maps,
        )
        return None
    return sd / "anat" / dsc["files"][0], transforms[0]


def measure_session(
    sd: str | Path, roi_paths: Mapping[str, str | Path], qc: QC, n_components: int = 3
) -> dict[str, float]:
    """PHI features of one session (NaN + a qc reason when they cannot be measured)."""
    sd = Path(sd)
    found = series_and_transform(sd, qc)
    if found is None:
        return phi_columns(None)
    series_path, transform = found
    series = load_nifti_4d(series_path, stage=FAMILY, what="DSC series")
    rings = [mask_on_series_grid(roi_paths[r], series, transform) for r in RINGS]
    data = np.asarray(series.dataobj, np.float32)
    # The same pre-bolus window the map step found (its cbv.json), else the first 10 volumes.
    side = sd / "maps" / "cbv.json"
    base = read_json(side).get("baseline", [0, 10]) if side.exists() else [0, 10]
    try:
        values = peritumoral_heterogeneity_index(
            data,
            rings[0],
            rings[1],
            n_components=n_components,
            baseline=slice(int(base[0]), int(base[1])),
            file=str(series_path),
        )
    except SubjectError as exc:  # e.g. rings too small on the coarse DSC grid
        qc.add(f"peritumoural heterogeneity not measured: {exc.message}", series_path)
        return phi_columns(None)
    return phi_columns(values)
