"""Habitats stage tests: sample, fit, apply, spatiotemporal on a synthetic longitudinal cohort."""

from __future__ import annotations

import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.habitat_subject import make_subject, random_fractions, subject_paths

from radiogenomics.habitats.apply import apply_subject, majority_filter
from radiogenomics.habitats.model import NAMED_HABITATS, fit_and_save, sample_subject
from radiogenomics.habitats.spatiotemporal import run_spatiotemporal

SEED = 42
MAPS = ["adc", "rcbv"]
FALLBACK = ["t1ce", "flair"]


def outputs_of(sd: Path) -> dict[str, Path]:
    """Per-subject habitat outputs (as the rule names them)."""
    h = sd / "habitats"
    return {
        "map": h / "habitat_map.nii.gz",
        "fractions": h / "habitat_fractions.tsv",
        "overlay": h / "overlay.png",
    }


def longitudinal_cohort(
    root: Path, n_disc: int = 20, n_val: int = 10, seed: int = 0, noise: float = 0.3
) -> tuple[list[dict], pd.DataFrame]:
    """Two sessions per subject; progressors gain hypervascular volume; PFS shortens with it."""
    rng = np.random.default_rng(seed)
    truths, labels = [], []
    for i in range(n_disc + n_val):
        cohort, subject = ("disc" if i < n_disc else "val"), f"{i:02d}"
        prog = i % 2
        f1 = np.array(random_fractions(rng))
        r1 = float(rng.uniform(12, 17))
        hyper2 = np.clip(f1[0] + 0.10 * prog + rng.normal(0, 0.05), 0.02, 0.9)
        rest = f1[1:] / f1[1:].sum() * (1 - hyper2)
        f2 = (hyper2, *rest)
        r2 = r1 * (1 + 0.07 * prog + rng.normal(0, 0.04))
        t1 = make_subject(
            root, cohort, subject, "1", tuple(f1), seed=1000 + i, core_radius_mm=r1, noise=noise
        )
        t2 = make_subject(
            root, cohort, subject, "2", tuple(f2), seed=2000 + i, core_radius_mm=r2, noise=noise
        )
        for t, ses in ((t1, "1"), (t2, "2")):
            t.update(cohort=cohort, subject=subject, session=ses)
        truths += [t1, t2]
        delta = t2["hypervascular_cellular__volume_ml"] - t1["hypervascular_cellular__volume_ml"]
        labels.append({"cohort": cohort, "subject": subject, "progression": prog, "delta": delta})
    lab = pd.DataFrame(labels)
    z = (lab["delta"] - lab["delta"].mean()) / lab["delta"].std()
    t = rng.exponential(500 * np.exp(-1.2 * z))
    lab["pfs_days"] = np.minimum(t, 900).round(1)
    lab["pfs_event"] = (t < 900).astype(int)
    return truths, lab.drop(columns="delta")


def run_stage(root: Path, truths: list[dict], **apply_kw) -> pd.DataFrame:
    """Sample discovery sessions, fit, apply to every session; return the fractions rows."""
    disc = []
    for t in truths:
        if t["cohort"] != "disc":
            continue
        out = t["sd"] / "habitats" / "voxel_sample.npz"
        sample_subject(
            (t["cohort"], t["subject"], t["session"]),
            subject_paths(t["sd"]),
            out,
            MAPS,
            FALLBACK,
            2000,
            50,
            SEED,
        )
        disc.append(out)
    hab = root / "results" / "habitats"
    fit_and_save(disc, {k: hab / f"{k}.x" for k in ("model", "centroids", "selection")}, seed=SEED)
    rows = []
    for t in truths:
        rows.append(
            apply_subject(
                (t["cohort"], t["subject"], t["session"]),
                subject_paths(t["sd"]),
                hab / "model.x",
                outputs_of(t["sd"]),
                maps=MAPS,
                fallback_sequences=FALLBACK,
                **apply_kw,
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("habitats")
    truths, labels = longitudinal_cohort(root)
    t0 = time.perf_counter()
    fractions = run_stage(root, truths)
    elapsed = time.perf_counter() - t0
    labels_path = root / "labels.tsv"
    labels.to_csv(labels_path, sep="\t", index=False)
    return {
        "root": root,
        "truths": truths,
        "labels": labels,
        "labels_path": labels_path,
        "fractions": fractions,
        "elapsed": elapsed,
    }


def test_fractions_match_truth(cohort: dict) -> None:
    f, truths = cohort["fractions"], cohort["truths"]
    assert (f["qc_reason"] == "").all()
    for name in NAMED_HABITATS:
        est = f[f"habitat__{name}__fraction"].to_numpy()
        true = np.array([t[f"{name}__fraction"] for t in truths])
        r = np.corrcoef(est, true)[0, 1]
        assert r >= 0.9, (name, r)
        assert np.abs(est - true).max() < 0.06 and np.abs(est - true).mean() < 0.02
        vol = f[f"habitat__{name}__volume_ml"].to_numpy()
        true_vol = np.array([t[f"{name}__volume_ml"] for t in truths])
        assert np.corrcoef(vol, true_vol)[0, 1] >= 0.95
        roi_ml = f["prov__habitat_roi_voxels"].to_numpy() * 2.0**3 / 1000
        np.testing.assert_allclose(vol, est * roi_ml)
    assert set(f["habitat__inputs"]) == {"nadc+rcbv"}
    np.testing.assert_allclose(f[[f"habitat__{n}__fraction" for n in NAMED_HABITATS]].sum(1), 1.0)


def test_validation_cohort_is_mapped_too(cohort: dict) -> None:
    f = cohort["fractions"]
    assert set(f.loc[f.cohort == "val", "prov__habitat_model"]) == {"primary:kmeans:k=3"}
    assert len(f[f.cohort == "val"]) == 20


def test_map_grid_dtype_and_codes(cohort: dict) -> None:
    t = cohort["truths"][0]
    img = nib.load(outputs_of(t["sd"])["map"])
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(img.affine, nib.load(t["sd"] / "prep" / "adc.nii.gz").affine)
    codes = np.asarray(img.dataobj)
    roi = np.asarray(nib.load(subject_paths(t["sd"])["roi"]).dataobj) > 0
    assert set(np.unique(codes[roi])) <= {1, 2, 3} and not codes[~roi].any()
    agree = (codes[roi] == t["labels"][roi]).mean()
    assert agree > 0.9
    png = outputs_of(t["sd"])["overlay"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_runtime_of_demo_sized_cohort(cohort: dict) -> None:
    # 60 sessions (20 discovery subjects x 2 fitted), fit + apply with overlays
    assert cohort["elapsed"] < 120


def test_rerun_is_byte_identical(cohort: dict, tmp_path: Path) -> None:
    sub = [t for t in cohort["truths"] if t["subject"] in {"00", "01", "02", "21"}]
    f1 = run_stage(tmp_path / "a", _copy(sub, cohort["root"], tmp_path / "a"))
    f2 = run_stage(tmp_path / "b", _copy(sub, cohort["root"], tmp_path / "b"))
    pd.testing.assert_frame_equal(f1, f2)
    a = (tmp_path / "a" / "results" / "habitats" / "centroids.x").read_bytes()
    assert a == (tmp_path / "b" / "results" / "habitats" / "centroids.x").read_bytes()


def _copy(truths: list[dict], src_root: Path, dst_root: Path) -> list[dict]:
    import shutil

    out = []
    for t in truths:
        rel = t["sd"].relative_to(src_root)
        dst = dst_root / rel
        shutil.copytree(t["sd"] / "prep", dst / "prep")
        shutil.copytree(t["sd"] / "seg", dst / "seg")
        out.append({**t, "sd": dst})
    return out


def test_planted_progression_effect_recovered(cohort: dict, tmp_path: Path) -> None:
    paths = [outputs_of(t["sd"])["fractions"] for t in cohort["truths"]]
    outs = {
        k: tmp_path / f"{k}.out"
        for k in ("changes", "odds_ratios", "hazard_ratios", "forest", "classifier")
    }
    res = run_spatiotemporal(paths, cohort["labels_path"], outs, seed=SEED, repeats=2)
    o = res["odds_ratios"].set_index(["scope", "habitat", "change"])
    h = res["hazard_ratios"].set_index(["scope", "habitat", "change"])
    key = ("all", "hypervascular_cellular", "delta_ml")
    assert o.loc[key, "odds_ratio"] > 1 and o.loc[key, "p"] < 0.05
    assert o.loc[key, "ci_low"] < o.loc[key, "odds_ratio"] < o.loc[key, "ci_high"]
    assert h.loc[key, "hazard_ratio"] > 1 and h.loc[key, "p"] < 0.05
    assert len(res["changes"]) == 30
    clf = res["classifier"].set_index("feature_set")
    assert clf.loc["habitat_change", "auc_mean"] > 0.8
    assert {"nadc_mean_change", "rcbv_mean_change"} <= set(clf.index)
    assert outs["forest"].read_bytes()[:4] == b"\x89PNG"

    shuffled = cohort["labels"].copy()
    rng = np.random.default_rng(5)
    shuffled["progression"] = rng.permutation(shuffled["progression"].to_numpy())
    shuffled[["pfs_days", "pfs_event"]] = shuffled[["pfs_days", "pfs_event"]].to_numpy()[
        rng.permutation(len(shuffled))
    ]
    shuffled.to_csv(tmp_path / "shuffled.tsv", sep="\t", index=False)
    res = run_spatiotemporal(paths, tmp_path / "shuffled.tsv", outs, seed=SEED, repeats=1)
    assert res["odds_ratios"].set_index(["scope", "habitat", "change"]).loc[key, "p"] > 0.05
    assert res["hazard_ratios"].set_index(["scope", "habitat", "change"]).loc[key, "p"] > 0.05


def test_empty_roi_and_missing_maps_give_nan_and_reason(cohort: dict, tmp_path: Path) -> None:
    model = cohort["root"] / "results" / "habitats" / "model.x"
    rng = np.random.default_rng(9)
    # empty ROI
    t = make_subject(tmp_path, "val", "90", "1", random_fractions(rng), seed=90)
    roi = subject_paths(t["sd"])["roi"]
    img = nib.load(roi)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine, img.header), roi)
    row = apply_subject(("val", "90", "1"), subject_paths(t["sd"]), model, outputs_of(t["sd"]))
    assert row["habitat__hypervascular_cellular__fraction"].isna().all()
    assert "min_roi_voxels" in row["qc_reason"].iloc[0]
    assert outputs_of(t["sd"])["overlay"].exists()
    # no ADC/rCBV and no fallback configured
    t = make_subject(
        tmp_path,
        "val",
        "91",
        "1",
        random_fractions(rng),
        seed=91,
        sequences=("t1", "t1ce", "t2", "flair"),
    )
    row = apply_subject(
        ("val", "91", "1"),
        subject_paths(t["sd"]),
        model,
        outputs_of(t["sd"]),
        fallback_sequences=[],
    )
    cols = [c for c in row.columns if c.endswith(("__fraction", "__volume_ml"))]
    assert len(cols) == 6 and row[cols].isna().all(axis=None)
    assert "missing maps: adc, rcbv" in row["qc_reason"].iloc[0]
    written = pd.read_csv(outputs_of(t["sd"])["fractions"], sep="\t")
    assert written["qc_reason"].iloc[0] == row["qc_reason"].iloc[0]
    # no ADC/rCBV with the structural fallback: generic habitats, and the inputs say so
    row = apply_subject(("val", "91", "1"), subject_paths(t["sd"]), model, outputs_of(t["sd"]))
    assert row["qc_reason"].iloc[0] == ""
    assert row["habitat__inputs"].iloc[0] == "t1ce+flair (fallback: missing maps: adc, rcbv)"
    assert row["habitat__habitat_1__fraction"].iloc[0] > 0
    assert row[[f"habitat__habitat_{i}__fraction" for i in (1, 2, 3)]].sum(axis=1).iloc[
        0
    ] == pytest.approx(1)


def test_majority_filter_removes_isolated_voxels_only() -> None:
    codes = np.zeros((12, 12, 12), np.uint8)
    mask = np.zeros_like(codes, bool)
    mask[2:10, 2:10, 2:10] = True
    codes[mask] = 1
    codes[2:10, 2:10, 6:10] = 2
    codes[4, 4, 3] = 3  # isolated voxel inside habitat 1
    out = majority_filter(codes, mask, k=3)
    assert out[4, 4, 3] == 1
    assert (out[~mask] == 0).all()
    changed = (out != codes) & mask
    assert changed.sum() == 1
    assert majority_filter(codes, mask, k=3, iterations=0) is codes


def _isolated(codes: np.ndarray) -> int:
    """Labelled voxels with no face/edge/corner neighbour of the same code."""
    from scipy import ndimage

    n = 0
    for c in np.unique(codes[codes > 0]):
        m = codes == c
        same = ndimage.convolve(m.astype(np.int16), np.ones((3, 3, 3), np.int16), mode="constant")
        n += int((m & (same == 1)).sum())
    return n


def test_majority_regularisation_option(cohort: dict, tmp_path: Path) -> None:
    """Majority filtering removes isolated voxels and keeps fractions close to truth."""
    t = cohort["truths"][4]
    model = cohort["root"] / "results" / "habitats" / "model.x"
    ids = ("disc", t["subject"], t["session"])
    codes = {}
    for reg in ("none", "majority"):
        outs = outputs_of(tmp_path / reg)
        row = apply_subject(ids, subject_paths(t["sd"]), model, outs, regularisation=reg)
        codes[reg] = np.asarray(nib.load(outs["map"]).dataobj)
        for name in NAMED_HABITATS:
            assert abs(row[f"habitat__{name}__fraction"].iloc[0] - t[f"{name}__fraction"]) < 0.06
    roi = t["labels"] > 0
    assert _isolated(codes["none"]) > 0 and _isolated(codes["majority"]) == 0
    assert (codes["none"][roi] != codes["majority"][roi]).mean() < 0.1
    assert (codes["majority"][~roi] == 0).all()
    with pytest.raises(ValueError, match="regularisation"):
        apply_subject(
            ids, subject_paths(t["sd"]), model, outputs_of(tmp_path / "x"), regularisation="mrf"
        )


def test_no_usable_discovery_subject_gives_nan_habitats_not_an_error(tmp_path):
    # extract_features applies the model in the same job as every feature family: a missing
    # model must cost the habitats only, never the other features of every session.
    model = {k: tmp_path / "habitats" / f"model_{k}" for k in ("model", "centroids", "selection")}
    models = fit_and_save([], model)
    assert all(m is None for m in models.values())
    t = make_subject(tmp_path, "val", "91", "1", (0.3, 0.4, 0.3), seed=91)
    out = outputs_of(t["sd"])
    row = apply_subject(("val", "91", "1"), subject_paths(t["sd"]), model["model"], out,
                        maps=MAPS, fallback_sequences=FALLBACK)  # fmt: skip
    fractions = pd.read_csv(out["fractions"], sep="\t")
    assert len(fractions) == 1 and len(row) == 1
    assert fractions["qc_reason"].tolist() == ["no habitat model available"]
    assert fractions.filter(like="__fraction").isna().all().all()
    assert out["map"].exists()
