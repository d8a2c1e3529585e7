"""Features stage: the measured T2-FLAIR mismatch sign recovers planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiogenomics.features.mismatch import MismatchParams, measure_mismatch, sign_performance

AFF = np.diag([1.5, 1.5, 1.5, 1.0])
SHAPE = (48, 48, 48)


def phantom(kind: str, seed: int, edema_mm: float = 0.0):
    """Brain with a lesion: 'mismatch', 'no_mismatch' (FLAIR bright) or 'enhancing' mismatch.

    With `edema_mm` > 0 the returned ROI also holds a FLAIR-bright oedema shell of that width
    (the whole tumour a segmentation gives), wider than the lesion the sign describes.
    """
    rng = np.random.default_rng(seed)
    g = np.indices(SHAPE).astype(float)
    brain = np.sqrt(((g - 23.5) ** 2).sum(0)) < 22
    radius = rng.uniform(7, 10)
    rho = np.sqrt(((g - 23.5 - rng.uniform(-3, 3, 3)[:, None, None, None]) ** 2).sum(0)) / radius
    lesion = rho < 1
    t2 = np.where(brain, 1.0 + 0.1 * rng.standard_normal(SHAPE), 0)
    flair = np.where(brain, 1.0 + 0.1 * rng.standard_normal(SHAPE), 0)
    t2[lesion] = 1.75 + 0.05 * rng.standard_normal(lesion.sum())
    if kind in ("mismatch", "enhancing"):
        rim = lesion & (rho >= 0.8)
        flair[lesion] = 0.62 + 0.05 * rng.standard_normal(lesion.sum())
        flair[rim] = 1.5 + 0.05 * rng.standard_normal(rim.sum())
    else:
        flair[lesion] = 1.6 + 0.05 * rng.standard_normal(lesion.sum())
    enhancing = lesion & (rho > 0.5) & (rho < 0.8) if kind == "enhancing" else np.zeros_like(lesion)
    roi = lesion
    if edema_mm > 0:
        roi = brain & (rho < 1 + edema_mm / (1.5 * radius))
        edema = roi & ~lesion
        t2[edema] = 1.45 + 0.05 * rng.standard_normal(edema.sum())
        flair[edema] = 1.55 + 0.05 * rng.standard_normal(edema.sum())
    near = ~roi & (rho < 1.4 + edema_mm / (1.5 * radius)) & brain
    return t2, flair, roi, enhancing, brain & ~roi & ~near


def test_sign_recovers_planted_truth():
    params = MismatchParams()
    rows = []
    for seed in range(4):
        for kind in ("mismatch", "no_mismatch", "enhancing"):
            t2, flair, lesion, enh, normal = phantom(kind, seed)
            m = measure_mismatch(t2, flair, lesion, enh, normal, AFF, params)
            rows.append({"kind": kind, "truth": kind == "mismatch", **m})
    df = pd.DataFrame(rows)
    perf = sign_performance(df["sign"], df["truth"])
    assert perf["sensitivity"] == 1.0 and perf["specificity"] == 1.0
    assert perf["n_positive"] == 4 and perf["n_negative"] == 8
    pos = df[df.kind == "mismatch"]
    assert (pos["core_suppressed_fraction"] > 0.9).all()
    assert (pos["rim_present"] == 1).all()
    assert (df[df.kind == "no_mismatch"]["suppressed_fraction"] < 0.05).all()
    assert (df[df.kind == "enhancing"]["enhancing_fraction"] > 0.05).all()


@pytest.mark.parametrize("edema_mm", [4.5, 7.5])
def test_sign_survives_a_whole_tumour_wider_than_the_lesion(edema_mm):
    """The ROI includes FLAIR-bright oedema around the lesion: the interior still decides."""
    params = MismatchParams()
    for seed in range(3):
        t2, flair, roi, enh, normal = phantom("mismatch", seed, edema_mm)
        m = measure_mismatch(t2, flair, roi, enh, normal, AFF, params)
        assert m["sign"] == 1.0 and m["interior_flair_z_median"] < m["interior_t2_z_median"]
        t2, flair, roi, enh, normal = phantom("no_mismatch", seed, edema_mm)
        assert measure_mismatch(t2, flair, roi, enh, normal, AFF, params)["sign"] == 0.0


def test_sign_performance_counts():
    perf = sign_performance(pd.Series([1, 0, 1, 0, np.nan]), pd.Series([1, 1, 0, 0, 1]))
    assert perf["sensitivity"] == pytest.approx(0.5)
    assert perf["specificity"] == pytest.approx(0.5)
    assert perf["n_positive"] == 2  # the NaN prediction is dropped


def test_planted_performance_joins_tables(tmp_path):
    from radiogenomics.features.mismatch import planted_performance

    paths = []
    for i, (sign, subj) in enumerate([(1.0, "A001"), (0.0, "A002"), (1.0, "A003")]):
        p = tmp_path / f"m{i}.tsv"
        pd.DataFrame(
            {
                "cohort": ["demo_a"],
                "subject": [subj],
                "session": ["01"],
                "mismatch__all__whole_tumor__sign": [sign],
            }
        ).to_csv(p, sep="\t", index=False)
        paths.append(p)
    truth = tmp_path / "planted.tsv"
    pd.DataFrame(
        {
            "cohort": ["demo_a"] * 3,
            "subject": ["A001", "A002", "A003"],
            "session": ["01"] * 3,
            "mismatch": [True, False, False],
        }
    ).to_csv(truth, sep="\t", index=False)
    perf = planted_performance(paths, truth)
    assert perf["sensitivity"] == 1.0 and perf["specificity"] == 0.5
