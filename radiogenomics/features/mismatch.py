"""Features stage, family `mismatch`: the T2-FLAIR mismatch sign, measured rather than read.

Criteria (Patel et al., Clin Cancer Res 2017; Jain et al., Neuro-Oncology 2020): the lesion is
(1) homogeneously hyperintense on T2, (2) relatively hypointense on FLAIR except for (3) a
hyperintense peripheral rim, and (4) not (or barely) enhancing. Each is measured on the final
normalised T2/FLAIR, on a robust z-scale of the subject's own normal-appearing brain (brain mask
minus whole tumour and near peritumoral ring; median and 1.4826 x MAD), so the result does not
depend on the normalisation method upstream:

- T2-hyperintense lesion H = whole tumour voxels with T2 z > `t2_hyper_z`;
  `t2_hyper_fraction` = |H| / |whole tumour| (criterion 1, >= `min_t2_hyper_fraction`).
- A voxel of H is FLAIR-suppressed when its FLAIR z < `suppression_ratio` x its T2 z (FLAIR
  signal well below what the T2 signal predicts, as in free-water-like tumour);
  `suppressed_fraction` over H, `core_suppressed_fraction` over the core of H (voxels deeper than
  `rim_width_mm` from the lesion surface) (criterion 2, core >= `min_core_suppressed_fraction`).
- Rim: the shell of H within `rim_width_mm` of the lesion surface; `rim_hyperintense_fraction` =
  share of shell voxels that are FLAIR-hyperintense (z > `rim_flair_z`) and not suppressed;
  `rim_present` when >= `min_rim_fraction` (criterion 3).
- `enhancing_fraction` = enhancing / whole tumour volume (criterion 4, <= `max_enhancing_fraction`).
- `sign` = 1 when all four hold, else 0 (NaN when inputs are missing).
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
    "lesion_ml",
    "sign",
)


@dataclass(frozen=True)
class MismatchParams:
    """Thresholds of the measured mismatch sign (config `features.mismatch`)."""

    t2_hyper_z: float = 1.0
    suppression_ratio: float = 0.5
    rim_width_mm: float = 3.0
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


def shell_and_core(lesion: np.ndarray, width_mm: float, spacing: tuple) -> tuple:
    """Split a lesion mask into its outer shell (<= width_mm from outside) and its core."""
    depth = ndimage.distance_transform_edt(lesion, sampling=spacing)
    shell = lesion & (depth <= width_mm)
    return shell, lesion & ~shell


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
    n_whole = int(whole.sum())
    hyper = whole & (t2z > params.t2_hyper_z)
    n_hyper = int(hyper.sum())
    suppressed = hyper & (flz < params.suppression_ratio * t2z)
    shell, core = shell_and_core(whole, params.rim_width_mm, spacing)
    core_h, shell_h = core & hyper, shell & hyper
    rim_bright = shell_h & (flz > params.rim_flair_z) & ~suppressed

    def frac(num: np.ndarray, den: np.ndarray) -> float:
        d = int(den.sum())
        return float(num.sum()) / d if d else np.nan

    out = {
        "t2_hyper_fraction": n_hyper / n_whole if n_whole else np.nan,
        "suppressed_fraction": frac(suppressed, hyper),
        "core_suppressed_fraction": frac(suppressed & core_h, core_h),
        "rim_hyperintense_fraction": frac(rim_bright, shell_h),
        "enhancing_fraction": float((enhancing & whole).sum()) / n_whole if n_whole else np.nan,
        "flair_t2_z_ratio_median": float(np.median(flz[hyper] / t2z[hyper])) if n_hyper else np.nan,
        "lesion_ml": n_whole * float(np.prod(spacing)) / 1000.0,
    }
    out["rim_present"] = float(out["rim_hyperintense_fraction"] >= params.min_rim_fraction)
    criteria = (
        out["t2_hyper_fraction"] >= params.min_t2_hyper_fraction,
        out["core_suppressed_fraction"] >= params.min_core_suppressed_fraction,
        out["rim_present"] == 1.0,
        out["enhancing_fraction"] <= params.max_enhancing_fraction,
    )
    # NaN comparisons are False, so a lesion too thin to have a core is sign-negative.
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
