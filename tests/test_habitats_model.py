"""Habitats stage tests: feature normalisation, naming rule, k selection, discovery-only fitting."""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from helpers.habitat_subject import WM_ADC, make_subject, random_fractions, subject_paths

from radiogenomics.habitats.model import (
    NAMED_HABITATS,
    choose_k,
    fit_and_save,
    fit_model,
    load_models,
    load_sample,
    load_subject_maps,
    name_habitats,
    nawm_mask,
    nawm_median,
    sample_subject,
    transform_values,
)

# back-transformed centroids (nADC, rCBV) of the three named habitats
CENTROIDS = {
    "hypervascular_cellular": (0.9, 4.0),
    "hypovascular_cellular": (1.0, 0.9),
    "nonviable": (2.2, 0.5),
}


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_naming_rule_follows_centroids_not_cluster_order(perm: tuple[int, ...]) -> None:
    names = list(CENTROIDS)
    cents = np.array([CENTROIDS[names[i]] for i in perm])
    order, got = name_habitats(cents, ("adc", "rcbv"))
    assert got == list(NAMED_HABITATS)
    assert [names[perm[i]] for i in order] == list(NAMED_HABITATS)


def test_naming_rule_with_rcbv_first_and_extra_cluster() -> None:
    cents = np.array([[0.4, 2.0], [5.0, 0.95], [0.5, 1.0], [1.0, 0.9]])  # (rcbv, adc) order
    order, names = name_habitats(cents, ("rcbv", "adc"))
    assert names == [*NAMED_HABITATS, "habitat_4"]
    assert list(order) == [1, 3, 0, 2]  # hyper=rcbv 5; hypo=lowest adc 0.9; nonviable=adc 2.0


def test_generic_names_without_adc_and_rcbv() -> None:
    order, names = name_habitats(np.array([[0.1, 1], [2.0, 0], [1.0, 5]]), ("t1ce", "flair"))
    assert names == ["habitat_1", "habitat_2", "habitat_3"]
    assert list(order) == [1, 2, 0]


def test_nawm_normalisation_removes_scanner_gain(tmp_path: Path) -> None:
    for seed in (3, 4):
        truth = make_subject(tmp_path, "c", f"s{seed}", "1", (0.3, 0.3, 0.4), seed=seed)
        sm = load_subject_maps(
            **_load_args(truth["sd"]), maps=["adc", "rcbv"], fallback_sequences=["t1ce"]
        )
        # nADC of the non-viable habitat is 2.3 by construction, whatever the ADC gain (0.8-1.25)
        nonviable = sm.primary.values["adc"][truth["labels"] == 3]
        assert np.median(nonviable) == pytest.approx(2.3, rel=0.03)
        # rCBV is already WM-normalised and passes through unchanged
        assert np.median(sm.primary.values["rcbv"][truth["labels"] == 1]) == pytest.approx(
            4.0, rel=0.03
        )


def test_nawm_median_of_known_wm(tmp_path: Path) -> None:
    truth = make_subject(tmp_path, "c", "01", "1", (0.3, 0.3, 0.4), seed=11)

    def arr(name: str) -> np.ndarray:
        return np.asarray(nib.load(truth["sd"] / name).dataobj)

    brain, tumour = arr("prep/brain_mask.nii.gz") > 0, arr("seg/rois/whole_tumor.nii.gz") > 0
    nawm = nawm_mask(brain, tumour, arr("prep/t1.nii.gz"), arr("prep/flair.nii.gz"))
    assert not (nawm & tumour).any()
    ref = nawm_median(arr("prep/adc.nii.gz"), nawm, t1_used=True)
    assert ref == pytest.approx(WM_ADC * truth["gain"], rel=0.02)


def _load_args(sd: Path) -> dict:
    p = subject_paths(sd)
    return {
        "prep_manifest": p["manifest"],
        "roi_path": p["roi"],
        "whole_tumor_path": p["whole_tumor"],
        "brain_mask_path": p["brain_mask"],
    }


def _blobs(seed: int, k: int = 3, n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.9, 4.0], [1.0, 0.9], [2.2, 0.5], [1.5, 2.0]])[:k]
    return np.exp(np.log(np.repeat(centres, n, axis=0)) + 0.1 * rng.standard_normal((k * n, 2)))


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_auto_k_finds_planted_number_of_habitats(method: str) -> None:
    for k_true in (3, 4):
        x = transform_values(_blobs(0, k_true), "primary")
        z = (x - x.mean(0)) / x.std(0)
        k, table = choose_k(z, method, [2, 6], seed=1)
        assert k == k_true, table
        assert list(table["k"]) == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_fit_model_centroids_and_determinism(method: str) -> None:
    samples = [_blobs(s)[s::2] for s in range(4)]
    m1 = fit_model(samples, ("adc", "rcbv"), "primary", method=method, seed=5)
    m2 = fit_model(samples, ("adc", "rcbv"), "primary", method=method, seed=5)
    assert m1.names == NAMED_HABITATS
    np.testing.assert_allclose(m1.centroids, [[0.9, 4.0], [1.0, 0.9], [2.2, 0.5]], rtol=0.05)
    np.testing.assert_array_equal(m1.centroids, m2.centroids)
    x = np.array([[0.85, 4.2], [1.05, 0.8], [2.5, 0.45]])
    assert list(m1.predict(x)) == [1, 2, 3]


def _cohort(root: Path, n_disc: int = 6, n_val: int = 2) -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n_disc + n_val):
        cohort = "disc" if i < n_disc else "val"
        tr = make_subject(root, cohort, f"{i:02d}", "1", random_fractions(rng), seed=100 + i)
        tr["cohort"], tr["subject"] = cohort, f"{i:02d}"
        out.append(tr)
    return out


def _sample_all(truths: list[dict], seed: int = 42) -> dict[str, list[Path]]:
    paths: dict[str, list[Path]] = {"disc": [], "val": []}
    for tr in truths:
        out = tr["sd"] / "habitats" / "voxel_sample.npz"
        sample_subject(
            (tr["cohort"], tr["subject"], "1"),
            subject_paths(tr["sd"]),
            out,
            ["adc", "rcbv"],
            ["t1ce", "flair"],
            2000,
            50,
            seed,
        )
        paths[tr["cohort"]].append(out)
    return paths


def test_sample_is_bounded_and_seeded(tmp_path: Path) -> None:
    truths = _cohort(tmp_path, 1, 0)
    p1 = _sample_all(truths)["disc"][0]
    a = load_sample(p1)
    assert a["primary_x"].shape == (2000, 2)  # ROI has > 2000 voxels, so the bound applies
    assert int(a["roi_voxels"]) > 2000
    assert a["cohort"] == "disc" and a["primary_reason"] == ""
    b = _sample_all(truths)["disc"][0]
    np.testing.assert_array_equal(load_sample(b)["primary_x"], a["primary_x"])


def test_model_is_fitted_on_discovery_only(tmp_path: Path) -> None:
    """Changing a validation subject's maps leaves the centroids unchanged; a discovery one not."""
    truths = _cohort(tmp_path)
    outs = {k: tmp_path / "hab" / f"{k}.out" for k in ("model", "centroids", "selection")}

    def fit() -> str:
        paths = _sample_all(truths)
        fit_and_save(paths["disc"], outs, seed=42)
        return outs["centroids"].read_text()

    def distort(tr: dict) -> None:
        p = tr["sd"] / "prep" / "rcbv.nii.gz"
        img = nib.load(p)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 3.0, img.affine, img.header), p)

    before = fit()
    distort(truths[-1])  # validation
    assert fit() == before
    distort(truths[0])  # discovery
    assert fit() != before
    models = load_models(outs["model"])
    assert models["primary"].n_subjects == 6
    table = pd.read_csv(outs["centroids"], sep="\t")
    assert list(table.loc[table.model == "primary", "habitat"]) == list(NAMED_HABITATS)


def test_fallback_model_when_discovery_lacks_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        tr = make_subject(
            tmp_path,
            "disc",
            f"{i}",
            "1",
            random_fractions(rng),
            seed=i,
            sequences=("t1", "t1ce", "t2", "flair"),
        )
        out = tr["sd"] / "habitats" / "voxel_sample.npz"
        sample_subject(
            ("disc", f"{i}", "1"),
            subject_paths(tr["sd"]),
            out,
            ["adc", "rcbv"],
            ["t1ce", "flair"],
            500,
            50,
            1,
        )
        assert load_sample(out)["primary_reason"] == "missing maps: adc, rcbv"
        paths.append(out)
    outs = {k: tmp_path / f"{k}.out" for k in ("model", "centroids", "selection")}
    models = fit_and_save(paths, outs, seed=1)
    assert models["primary"] is None
    assert models["fallback"].names == ("habitat_1", "habitat_2", "habitat_3")
    assert models["fallback"].inputs_label() == "t1ce+flair"
