"""Feature robustness (cohort stage): ICC against Shrout & Fleiss (1979) and the drop list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.cohort.robustness import dropped_features, feature_icc, icc, run_robustness
from radiogenomics.io import read_tsv, write_tsv

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(2,1) = .29, ICC(3,1) = .71.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_icc_matches_shrout_fleiss() -> None:
    assert icc(SF, "2,1") == pytest.approx(0.29, abs=0.005)
    assert icc(SF, "3,1") == pytest.approx(0.71, abs=0.005)
    assert np.isnan(icc(SF[:1]))
    with pytest.raises(ValueError):
        icc(SF, "1,1")


def _perturbed(sd: Path, values: dict[str, tuple[float, float, float]]) -> None:
    rows = [
        (p, f, v[i])
        for f, v in values.items()
        for i, p in enumerate(("original", "erode1", "dilate1"))
    ]
    df = pd.DataFrame(rows, columns=["perturbation", "feature", "value"])
    for i, c in enumerate(("cohort", "subject", "session")):
        df.insert(i, c, sd.parts[-3 + i])
    write_tsv(df, sd / "features" / "perturbed.tsv")


def test_unstable_feature_is_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(30):
        sd = tmp_path / "c" / f"sub-s{i}" / "ses-01"
        truth = rng.normal()
        stable = tuple(truth + rng.normal(0, 0.05, 3))
        noisy = tuple(rng.normal(0, 1, 3))  # perturbation noise as large as the signal
        _perturbed(
            sd,
            {"histogram__t1__whole_tumor__p50": stable, "radiomics__t1__whole_tumor__glcm": noisy},
        )
        paths.append(str(sd / "features" / "perturbed.tsv"))
    empty = tmp_path / "c" / "sub-x" / "ses-01" / "features" / "perturbed.tsv"
    empty.parent.mkdir(parents=True)
    empty.touch()  # a failed subject's placeholder is skipped
    run_robustness([*paths, str(empty)], 0.75, "3,1", tmp_path / "icc.tsv", tmp_path / "drop.tsv")
    iccs = read_tsv(tmp_path / "icc.tsv").set_index("feature")
    assert iccs.loc["histogram__t1__whole_tumor__p50", "icc"] > 0.95
    assert iccs.loc["radiomics__t1__whole_tumor__glcm", "icc"] < 0.3
    assert (iccs["n_subjects"] == 30).all()
    assert read_tsv(tmp_path / "drop.tsv")["feature"].tolist() == [
        "radiomics__t1__whole_tumor__glcm"
    ]


def test_no_perturbation_data_drops_nothing(tmp_path: Path) -> None:
    run_robustness([], 0.75, "3,1", tmp_path / "icc.tsv", tmp_path / "drop.tsv")
    assert read_tsv(tmp_path / "drop.tsv").empty
    iccs = pd.DataFrame({"feature": ["a", "b"], "icc": [np.nan, 0.9]})
    assert dropped_features(iccs, 0.75)["reason"].tolist() == ["icc undefined"]
    assert feature_icc(pd.DataFrame(columns=["unit", "perturbation", "feature", "value"])).empty


def test_vectorised_icc_equals_a_pivot_per_feature() -> None:
    """feature_icc reshapes once for all features; per feature it must give what a pivot of that
    feature alone gives: raters = perturbations with a value, subjects = units with a value."""
    rng = np.random.default_rng(5)
    rows = []
    for f in range(12):
        for u in range(6):
            base = rng.normal()
            for p in ("original", "erode1", "dilate1"):
                value = base + 0.3 * rng.normal()
                if (f == 3 and p == "dilate1") or (f == 7 and u == 2) or f == 9:
                    value = np.nan  # a perturbation, a subject, or everything missing
                rows.append({"unit": f"u{u}", "perturbation": p, "feature": f"fam__f{f:02d}",
                             "value": value})  # fmt: skip
    long = pd.DataFrame(rows)
    got = feature_icc(long).set_index("feature")
    for feat, sub in long.groupby("feature"):
        wide = sub.pivot_table(index="unit", columns="perturbation", values="value",
                               aggfunc="first")  # fmt: skip
        cols = [c for c in ("original", "erode1", "dilate1") if c in wide.columns]
        Y = wide[cols].to_numpy(float)
        expected = icc(Y)
        assert got.loc[feat, "n_subjects"] == int(np.isfinite(Y).all(axis=1).sum()), feat
        if np.isnan(expected):
            assert np.isnan(got.loc[feat, "icc"]), feat
        else:
            assert got.loc[feat, "icc"] == pytest.approx(expected, abs=1e-12), feat
    assert got.loc["fam__f03", "n_subjects"] == 6  # two raters left, every subject
    assert got.loc["fam__f07", "n_subjects"] == 5
    assert np.isnan(got.loc["fam__f09", "icc"]) and got.loc["fam__f09", "n_subjects"] == 0
