"""Habitats stage tests: change tables, OR/HR on planted and shuffled outcomes, classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.habitats.spatiotemporal import (
    _firth_fit,
    association_tables,
    compare_classifiers,
    cox_hr,
    habitat_changes,
    logistic_or,
    merge_labels,
    read_fractions,
)

NAMES = ("hypervascular_cellular", "hypovascular_cellular", "nonviable")


def fraction_rows(
    cohort: str, subject: str, sessions: dict[str, tuple[float, float, float]]
) -> list[dict]:
    """Fraction-table rows with the given habitat volumes (ml) per session."""
    rows = []
    for ses, vols in sessions.items():
        total = sum(vols)
        row = {"cohort": cohort, "subject": subject, "session": ses}
        for n, v in zip(NAMES, vols, strict=True):
            row[f"habitat__{n}__volume_ml"] = v
            row[f"habitat__{n}__fraction"] = v / total
        row["habitat__nadc__tumor_core__mean"] = 1.2
        row["habitat__rcbv__tumor_core__mean"] = 1.5 + vols[0] / 10
        row["habitat__inputs"] = "nadc+rcbv"
        row["qc_reason"] = ""
        rows.append(row)
    return rows


def test_changes_first_to_last_in_natural_session_order(tmp_path: Path) -> None:
    rows = fraction_rows(
        "c", "01", {"10": (9.0, 2.0, 1.0), "2": (5.0, 2.0, 1.0), "1": (4.0, 2.0, 0.0)}
    )
    rows += fraction_rows("c", "02", {"1": (1.0, 1.0, 1.0)})  # one session only: no change
    rows += fraction_rows("c", "03", {"1": (1.0, 1.0, 1.0), "2": (2.0, 1.0, 1.0)})
    rows[-1]["qc_reason"] = "ROI empty"  # a failed session is not used
    p = tmp_path / "f.tsv"
    pd.DataFrame(rows).to_csv(p, sep="\t", index=False)
    (tmp_path / "failed.tsv").touch()  # empty placeholder of a failed subject
    ch = habitat_changes(read_fractions([p, tmp_path / "failed.tsv"]))
    assert list(ch["subject"]) == ["01"]
    r = ch.iloc[0]
    assert (r["session_first"], r["session_last"], r["n_sessions"]) == ("1", "10", 3)
    assert r["hypervascular_cellular__delta_ml"] == pytest.approx(5.0)
    assert r["hypervascular_cellular__rel_change"] == pytest.approx(1.25)
    assert np.isnan(r["nonviable__rel_change"])  # absent at first: relative change undefined
    assert r["nonviable__delta_ml"] == pytest.approx(1.0)
    assert r["hypervascular_cellular__delta_fraction"] == pytest.approx(0.75 - 4 / 6)
    assert r["rcbv__delta_mean"] == pytest.approx(0.5)


def test_labels_merge_with_and_without_cohort_column() -> None:
    ch = pd.DataFrame({"cohort": ["a", "b"], "subject": ["1", "1"], "x": [0.0, 1.0]})
    lab = pd.DataFrame({"cohort": ["a", "b"], "subject": [1, 1], "progression": [0, 1]})
    assert list(merge_labels(ch, lab)["progression"]) == [0, 1]
    lab2 = pd.DataFrame({"subject": ["1"], "progression": [1], "pfs_days": [300], "pfs_event": [1]})
    out = merge_labels(ch, lab2)
    assert list(out["pfs_days"]) == [300, 300]


def planted(n: int, seed: int, beta: float = 1.0) -> pd.DataFrame:
    """Changes with a planted effect of the hypervascular change on progression and PFS."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2.0, n)  # ml
    z = (x - x.mean()) / x.std()
    prog = (rng.random(n) < 1 / (1 + np.exp(-beta * z))).astype(int)
    t = rng.exponential(400 * np.exp(-beta * z))
    d = pd.DataFrame(
        {
            "cohort": "c",
            "subject": [f"{i}" for i in range(n)],
            "progression": prog,
            "pfs_days": np.minimum(t, 1000),
            "pfs_event": (t < 1000).astype(int),
        }
    )
    d["hypervascular_cellular__delta_ml"] = x
    d["hypovascular_cellular__delta_ml"] = rng.normal(0, 1.0, n)  # no effect planted
    return d


def test_planted_effect_gives_or_and_hr_above_one() -> None:
    d = planted(80, seed=1)
    o, h = association_tables(d, list(NAMES[:2]))
    o, h = o.set_index(["habitat", "change"]), h.set_index(["habitat", "change"])
    key = ("hypervascular_cellular", "delta_ml")
    assert o.loc[key, "odds_ratio"] > 1 and o.loc[key, "p"] < 0.05
    assert h.loc[key, "hazard_ratio"] > 1 and h.loc[key, "p"] < 0.05
    # per-SD scaling: OR of the planted logit slope beta=1 -> about e
    assert o.loc[key, "ci_low"] < np.e < o.loc[key, "ci_high"]
    assert h.loc[key, "ci_low"] < np.e < h.loc[key, "ci_high"]
    assert o.loc[key, "n"] == 80 and o.loc[key, "sd_of_change"] == pytest.approx(
        d["hypervascular_cellular__delta_ml"].std(), rel=1e-9
    )


def test_shuffled_outcomes_are_not_significant() -> None:
    d = planted(80, seed=2)
    rng = np.random.default_rng(3)
    rejections_or, rejections_hr = 0, 0
    for _ in range(20):
        s = d.copy()
        s["progression"] = rng.permutation(s["progression"].to_numpy())
        perm = rng.permutation(len(s))
        s[["pfs_days", "pfs_event"]] = s[["pfs_days", "pfs_event"]].to_numpy()[perm]
        o = logistic_or(s["hypervascular_cellular__delta_ml"], s["progression"])
        h = cox_hr(s["hypervascular_cellular__delta_ml"], s["pfs_days"], s["pfs_event"])
        rejections_or += o["p"] < 0.05
        rejections_hr += h["p"] < 0.05
    first = d.copy()
    first["progression"] = np.random.default_rng(4).permutation(first["progression"].to_numpy())
    assert logistic_or(first["hypervascular_cellular__delta_ml"], first["progression"])["p"] > 0.05
    assert rejections_or <= 4 and rejections_hr <= 4  # nominal 5 % of 20 = 1


def test_separation_uses_firth_and_small_groups_are_not_estimated() -> None:
    x = pd.Series(np.arange(12, dtype=float))
    y = pd.Series((x > 5.5).astype(int))
    res = logistic_or(x, y)
    assert "Firth" in res["note"]
    assert 1 < res["ci_low"] < res["odds_ratio"] < res["ci_high"] < np.inf and res["p"] < 0.05
    res = logistic_or(x[:4], pd.Series([0, 0, 0, 1]))
    assert np.isnan(res["p"]) and "too few" in res["note"]
    res = cox_hr(x, pd.Series(np.full(12, 100.0)), pd.Series([1, 1] + [0] * 10))
    assert np.isnan(res["hazard_ratio"]) and "too few events" in res["note"]


@pytest.mark.parametrize("cells", [(7, 0, 2, 5), (3, 4, 6, 1), (10, 2, 0, 8)])
def test_firth_matches_half_cell_correction_for_a_binary_covariate(cells: tuple[int, ...]) -> None:
    """For one binary covariate Firth's estimate is the log OR with 0.5 added to every cell."""
    a, b, c, d = cells  # (exposed cases, exposed controls, unexposed cases, unexposed controls)
    xb = np.array([1.0] * (a + b) + [0.0] * (c + d))
    y = np.array([1.0] * a + [0.0] * b + [1.0] * c + [0.0] * d)
    beta, _, _ = _firth_fit(np.column_stack([np.ones_like(xb), xb]), y)
    expected = np.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)))
    assert beta[1] == pytest.approx(expected, abs=1e-6)


def test_classifier_prefers_habitat_change_when_signal_is_there() -> None:
    d = planted(60, seed=5, beta=2.5)
    d["hypervascular_cellular__delta_fraction"] = d["hypervascular_cellular__delta_ml"] / 20
    d["nadc__delta_mean"] = np.random.default_rng(6).normal(0, 0.1, len(d))  # uninformative
    clf = compare_classifiers(
        d, ["hypervascular_cellular", "hypovascular_cellular"], seed=0, repeats=1
    )
    c = clf.set_index("feature_set")
    assert c.loc["habitat_change", "auc_mean"] > 0.75
    assert c.loc["nadc_mean_change", "auc_mean"] < 0.65
    assert c.loc["nadc_mean_change", "auc_diff_vs_habitat"] > 0.1
    again = compare_classifiers(
        d, ["hypervascular_cellular", "hypovascular_cellular"], seed=0, repeats=1
    )
    pd.testing.assert_frame_equal(clf, again)
    few = compare_classifiers(d.head(3), ["hypervascular_cellular"], seed=0)
    assert few["auc_mean"].isna().all() and few["note"].str.contains("too few").all()


def test_no_longitudinal_subjects_still_writes_every_output(tmp_path: Path) -> None:
    from radiogenomics.habitats.spatiotemporal import run_spatiotemporal

    p = tmp_path / "f.tsv"
    pd.DataFrame(fraction_rows("c", "01", {"1": (1.0, 2.0, 3.0)})).to_csv(p, sep="\t", index=False)
    lab = tmp_path / "labels.tsv"
    pd.DataFrame({"subject": ["01"], "progression": [""]}).to_csv(lab, sep="\t", index=False)
    outs = {
        k: tmp_path / f"{k}.out"
        for k in ("changes", "odds_ratios", "hazard_ratios", "forest", "classifier")
    }
    res = run_spatiotemporal([p], lab, outs)
    assert res["changes"].empty and res["odds_ratios"].empty
    assert all(o.exists() for o in outs.values())
