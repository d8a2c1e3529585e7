"""Features stage, family `mismatch`: the T2-FLAIR mismatch sign, measured rather than read.

Criteria (Patel et al., Clin Cancer Res 2017; Jain et al., Neuro-Oncology 2020): the lesion is
(1) homogeneously hyperintense on T2, (2) relatively hypointense on FLAIR except for (3) a
hyperintense peripheral rim, and (4) not (or barely) enhancing. Each is measured on the final
normalised T2/FLAIR, on a robust z-scale of the subject's own normal-appearing brain (brain mask
minus whole tumour and near peritumoral ring; median and 1.4826 x MAD), so the result does not
depend on the normalisation method upstream:

The sign is read on the lesion's interior, not on the whole FLAIR/T2 abnormality: the whole
tumour includes the FLAIR-bright peripheral rim (and any oedema), which would dilute the central
suppression. Depth d = distance (mm) of a whole-tumour voxel from the tumour surface:

- Interior I = whole-tumour voxels with d >= `interior_depth_fraction` x max(d) (the inner half
  of the lesion's radius by default: the rim and oedema occupy the outer part, and the central
  free-water-like signal is what the sign describes). Shell S = voxels with d <= `rim_width_mm`.
- T2-hyperintense = T2 z > `t2_hyper_z`; `t2_hyper_fraction` = share of the lesion without its
  shell (whole minus S, so the partial-volume edge does not count) that is T2-hyperintense
  (criterion 1, homogeneous T2 signal, >= `min_t2_hyper_fraction`).
- A T2-hyperintense voxel is FLAIR-suppressed when its FLAIR z < `suppression_ratio` x its T2 z
  (FLAIR well below what the T2 signal predicts, as in free-water-like tumour);
  `suppressed_fraction` over all T2-hyperintense lesion voxels, `core_suppressed_fraction` over
  the T2-hyperintense interior (criterion 2, >= `min_core_suppressed_fraction`);
  `interior_t2_z_median` and `interior_flair_z_median` report the interior's signal against
  normal brain (a suppressed interior is T2-bright but FLAIR near or below normal brain).
- Rim: `rim_hyperintense_fraction` = share of the T2-hyperintense shell voxels that are
  FLAIR-hyperintense (z > `rim_flair_z`) and not suppressed; `rim_present` when >=
  `min_rim_fraction` (criterion 3).
- `enhancing_fraction` = enhancing / whole tumour volume (criterion 4, <= `max_enhancing_fraction`).
- `sign` = 1 when all four hold, else 0 (NaN when inputs are missing).

Thresholds are a priori: z = 1 is one robust SD above normal brain; a suppression ratio of 0.5
means FLAIR carries less than half the T2 excess; 3 mm is about one to two voxels of the rim at
the resampled 1-2 mm grid; 5 % enhancement is the "not or barely enhancing" cut of Jain 2020.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.config import float_params
from radiogenomics.features.common import prefixed, spacing_mm

FAMILY = "mismatch"
FEATURES = (
    "t2_hyper_fraction",
    "suppressed_fraction",
    "core_suppressed_fraction",
    "rim_hyperintense_fraction",
    "rim_present",
    "enhancing_fraction",
    "flair_t2_z_ratio_median",
    "interior_t2_z_median",
    "interior_flair_z_median",
    "lesion_ml",
    "sign",
)


@dataclass(frozen=True)
class MismatchParams:
    """Thresholds of the measured mismatch sign (config `features.mismatch`)."""

    t2_hyper_z: float = 1.0
    suppression_ratio: float = 0.5
    rim_width_mm: float = 3.0
    interior_depth_fraction: float = 0.5
    rim_flair_z: float = 1.0
    min_t2_hyper_fraction: float = 0.8
    min_core_suppressed_fraction: float = 0.5
    min_rim_fraction: float = 0.5
    max_enhancing_fraction: float = 0.05

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> MismatchParams:
        """Build from a config mapping, ignoring keys that are not thresholds."""
        return float_params(cls, cfg)


def robust_z(arr: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD) of the reference voxels (normal-appearing brain)."""
    vals = arr[reference]
    med = float(np.median(vals))
    mad = 1.4826 * float(np.median(np.abs(vals - med)))
    scale = mad if mad > 0 else (float(vals.std()) or 1.0)
    return (arr - med) / scale


def lesion_depth(lesion: np.ndarray, spacing: tuple) -> np.ndarray:
    """Distance (mm) of each lesion voxel from the lesion surface (0 outside)."""
    return ndimage.distance_transform_edt(lesion, sampling=spacing)


def shell_and_interior(
    lesion: np.ndarray, depth: np.ndarray, width_mm: float, interior_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Outer shell (depth <= width_mm) and interior (depth >= fraction x the maximum depth)."""
    shell = lesion & (depth <= width_mm)
    top = float(depth[lesion].max()) if lesion.any() else 0.0
    interior = lesion & (depth >= interior_fraction * top) & ~shell
    return shell, interior


def frac(num: np.ndarray, den: np.ndarray) -> float:
    """Share of the `den` voxels also in `num` (NaN for an empty denominator)."""
    d = int(den.sum())
    return float((num & den).sum()) / d if d else np.nan


def median_or_nan(values: np.ndarray) -> float:
    """Median, NaN when empty."""
    return float(np.median(values)) if values.size else np.nan


def measure_mismatch(
    t2: np.ndarray,
    flair: np.ndarray,
    whole: np.ndarray,
    enhancing: np.ndarray,
    normal: np.ndarray,
    affine: np.ndarray,
    params: MismatchParams,
) -> dict[str, float]:
    """All mismatch measurements for one lesion (see the module docstring)."""
    spacing = spacing_mm(affine)
    t2z, flz = robust_z(t2, normal), robust_z(flair, normal)
    whole = ndimage.binary_fill_holes(whole)
    n_whole = int(whole.sum())
    depth = lesion_depth(whole, spacing)
    shell, interior = shell_and_interior(
        whole, depth, params.rim_width_mm, params.interior_depth_fraction
    )
    hyper = whole & (t2z > params.t2_hyper_z)
    suppressed = hyper & (flz < params.suppression_ratio * t2z)
    interior_h, shell_h = interior & hyper, shell & hyper
    rim_bright = shell_h & (flz > params.rim_flair_z) & ~suppressed
    out = {
        "t2_hyper_fraction": frac(hyper, whole & ~shell),
        "suppressed_fraction": frac(suppressed, hyper),
        "core_suppressed_fraction": frac(suppressed, interior_h),
        "rim_hyperintense_fraction": frac(rim_bright, shell_h),
        "enhancing_fraction": float((enhancing & whole).sum()) / n_whole if n_whole else np.nan,
        "flair_t2_z_ratio_median": median_or_nan(flz[hyper] / t2z[hyper]),
        "interior_t2_z_median": median_or_nan(t2z[interior]),
        "interior_flair_z_median": median_or_nan(flz[interior]),
        "lesion_ml": n_whole * float(np.prod(spacing)) / 1000.0,
    }
    out["rim_present"] = float(out["rim_hyperintense_fraction"] >= params.min_rim_fraction)
    criteria = (
        out["t2_hyper_fraction"] >= params.min_t2_hyper_fraction,
        out["core_suppressed_fraction"] >= params.min_core_suppressed_fraction,
        out["rim_present"] == 1.0,
        out["enhancing_fraction"] <= params.max_enhancing_fraction,
    )
    # NaN comparisons are False, so a lesion too thin to have an interior is sign-negative.
    out["sign"] = float(all(criteria))
    return {k: float(out[k]) for k in FEATURES}


def mismatch_features(values: Mapping[str, float] | None) -> dict:
    """`mismatch__all__whole_tumor__*` columns (NaN when `values` is None)."""
    values = values or {k: np.nan for k in FEATURES}
    return prefixed(FAMILY, "all", "whole_tumor", values)


def sign_performance(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Sensitivity/specificity of a binary sign against planted truth (rows with NaN dropped)."""
    df = pd.DataFrame({"p": predicted, "t": truth}).dropna()
    p, t = df["p"].astype(bool), df["t"].astype(bool)
    tp, tn = int((p & t).sum()), int((~p & ~t).sum())
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    return {
        "n_positive": n_pos,
        "n_negative": n_neg,
        "true_positive": tp,
        "true_negative": tn,
        "sensitivity": tp / n_pos if n_pos else np.nan,
        "specificity": tn / n_neg if n_neg else np.nan,
    }


def planted_performance(
    mismatch_tables: list, planted_path, truth_column: str = "mismatch"
) -> dict[str, float]:
    """Sensitivity/specificity of `sign` in per-subject mismatch.tsv files vs the demo's truth.

    `planted_path` is the demo generator's `resources/demo/truth/planted.tsv`; rows are joined on
    the id columns both tables share (cohort, subject, session).
    """
    frames = [
        pd.read_csv(p, sep="\t", dtype={"subject": str, "session": str}) for p in mismatch_tables
    ]
    feats = pd.concat([f for f in frames if len(f)], ignore_index=True)
    truth = pd.read_csv(planted_path, sep="\t", dtype={"subject": str, "session": str})
    keys = [k for k in ("cohort", "subject", "session") if k in feats and k in truth]
    merged = feats.merge(truth[keys + [truth_column]], on=keys, how="inner")
    sign = merged[f"{FAMILY}__all__whole_tumor__sign"]
    planted = merged[truth_column].astype(str).str.lower().isin(["1", "true", "yes"])
    return sign_performance(sign, planted.astype(float))
