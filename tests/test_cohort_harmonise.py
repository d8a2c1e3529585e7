"""ComBat harmoniser (cohort stage): removes site effects, fitted on training rows only."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from radiogenomics.cohort.harmonise import (
    BatchedRows,
    ComBatHarmoniser,
    FrameImputer,
    column_nanmedians,
    harmonise_table,
)
from radiogenomics.cohort.models import build_pipeline

SHIFT = {"a": 0.0, "b": 3.0, "c": -2.0, "new": 5.0}
SCALE = {"a": 1.0, "b": 2.0, "c": 0.5, "new": 3.0}


def sites_table(n: int, p: int, sites: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with a planted biological signal (y) and per-site location/scale effects."""
    rng = np.random.default_rng(seed)
    site = np.array(sites)[rng.integers(0, len(sites), n)]
    y = rng.integers(0, 2, n)
    base = rng.normal(size=(n, p)) + 1.0 * y[:, None] * (np.arange(p) < 3)
    loc = np.array([SHIFT[s] for s in site])[:, None]
    scale = np.array([SCALE[s] for s in site])[:, None]
    df = pd.DataFrame(
        base * scale + loc, columns=[f"radiomics__t1__whole_tumor__f{i}" for i in range(p)]
    )
    df["site"] = site
    return df, y


def site_spread(df: pd.DataFrame) -> float:
    """Spread of per-site means, averaged over features."""
    return float(df.groupby(df["site"]).mean(numeric_only=True).std(axis=0).mean())


def test_combat_removes_site_location_and_scale() -> None:
    df, _ = sites_table(300, 8, ["a", "b", "c"], 0)
    h = ComBatHarmoniser().fit(df.iloc[:200])
    out = h.transform(df.iloc[200:])
    out["site"] = df["site"].iloc[200:].to_numpy()
    assert site_spread(df.iloc[200:]) > 2.0
    assert site_spread(out) < 0.3
    sds = out.groupby("site").std(numeric_only=True).mean(axis=1)
    assert sds.max() / sds.min() < 1.3  # scales 0.5..2 brought together
    assert "site" not in h.transform(df.iloc[:5]).columns


def test_training_transform_ignores_held_out_rows() -> None:
    """Leakage test: changing only held-out rows leaves the fitted training transform unchanged."""
    df, y = sites_table(240, 6, ["a", "b", "c"], 1)
    tr, te = np.arange(160), np.arange(160, 240)
    pipe1 = build_pipeline("logistic").fit(df.iloc[tr], y[tr])
    df2 = df.copy()
    df2.iloc[te, :6] = df2.iloc[te, :6] * 10 + 100  # wildly different held-out rows
    df2.iloc[te, 6] = "c"
    pipe2 = build_pipeline("logistic").fit(df2.iloc[tr], y[tr])
    e1, e2 = pipe1.named_steps["combat"].estimates_, pipe2.named_steps["combat"].estimates_
    for key in ("gamma.star", "delta.star", "var.pooled"):
        np.testing.assert_array_equal(e1[key], e2[key])
    np.testing.assert_array_equal(
        pipe1.named_steps["model"].coef_, pipe2.named_steps["model"].coef_
    )
    np.testing.assert_array_equal(
        pipe1.predict_proba(df.iloc[tr]), pipe2.predict_proba(df2.iloc[tr])
    )
    # A seen-site held-out row is transformed on its own: its neighbours do not matter.
    h = ComBatHarmoniser().fit(df.iloc[tr])
    one = h.transform(df.iloc[[200]])
    many = h.transform(df.iloc[te])
    np.testing.assert_allclose(one.to_numpy(), many.loc[[200]].to_numpy())


def test_unseen_site_reference_vs_none() -> None:
    df, _ = sites_table(300, 6, ["a", "b"], 2)
    new, _ = sites_table(80, 6, ["new"], 3)
    h = ComBatHarmoniser(unseen="reference").fit(df)
    ref_train = h.transform(df)
    with_ref = h.transform(new)
    h_none = ComBatHarmoniser(unseen="none").fit(df)
    without = h_none.transform(new)
    np.testing.assert_allclose(without.to_numpy(), new.drop(columns="site").to_numpy())
    gap_ref = abs(with_ref.mean().mean() - ref_train.mean().mean())
    gap_none = abs(without.mean().mean() - ref_train.mean().mean())
    assert gap_none > 4.0 and gap_ref < 0.5
    # Training estimates are untouched by harmonising the new site.
    np.testing.assert_array_equal(h.transform(df).to_numpy(), ref_train.to_numpy())


def test_single_batch_is_identity_and_imputer_keeps_batch() -> None:
    df, _ = sites_table(50, 4, ["a"], 4)
    df.iloc[0, 0] = np.nan
    imp = FrameImputer().fit(df)
    filled = imp.transform(df)
    assert filled["site"].tolist() == df["site"].tolist()
    assert filled.iloc[0, 0] == np.nanmedian(df.iloc[:, 0])
    out = ComBatHarmoniser().fit(filled).transform(filled)
    np.testing.assert_allclose(out.to_numpy(), filled.drop(columns="site").to_numpy())


def test_harmonise_table_fits_on_discovery_only() -> None:
    df, _ = sites_table(200, 5, ["a", "b"], 5)
    feats = [c for c in df.columns if c != "site"]
    mask = np.arange(len(df)) < 150
    out1 = harmonise_table(df, feats, "site", mask)
    df2 = df.copy()
    df2.loc[~mask, feats] = 0.0
    df2.loc[df2.index[-1], feats[0]] = np.nan
    out2 = harmonise_table(df2, feats, "site", mask)
    pd.testing.assert_frame_equal(out1[mask], out2[mask])
    assert np.isnan(out2.iloc[-1][feats[0]])  # missing stays missing in the display table


def test_unseen_site_after_single_site_training() -> None:
    """The demo case: one discovery site, validation from another scanner (x1.2 rCBV gain)."""
    df, _ = sites_table(120, 5, ["a"], 6)
    new, _ = sites_table(40, 5, ["new"], 7)
    h = ComBatHarmoniser().fit(df)
    assert not h.active_  # nothing to harmonise within training
    train_out = h.transform(df)
    np.testing.assert_allclose(train_out.to_numpy(), df.drop(columns="site").to_numpy())
    moved = h.transform(new)
    assert abs(moved.mean().mean() - df.drop(columns="site").mean().mean()) < 0.5
    assert abs(moved.std().mean() - df.drop(columns="site").std().mean()) < 0.3


def test_array_output_equals_frame_output() -> None:
    """Model pipelines take the bare array (scikit-learn re-checks a DataFrame's dtypes on every
    call); the values, the unseen-site path included, are the frame's."""
    df, _ = sites_table(120, 5, ["a", "b"], 3)
    new, _ = sites_table(20, 5, ["new"], 4)
    frame = ComBatHarmoniser().fit(df)
    array = ComBatHarmoniser(as_frame=False).fit(df)
    for rows in (df, new):
        out = array.transform(rows)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, frame.transform(rows).to_numpy())


def test_column_nanmedians_equal_numpy_nanmedian() -> None:
    """The one-sort column medians are np.nanmedian's, bit for bit (ties, gaps, empty columns)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        a = np.round(rng.normal(size=(rng.integers(1, 40), rng.integers(1, 12))), 1)
        a[rng.random(a.shape) < rng.random() * 0.6] = np.nan
        a[:, 0] = np.nan if rng.random() < 0.3 else a[:, 0]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(a, axis=0)
        np.testing.assert_array_equal(column_nanmedians(a), expected)


def test_batched_rows_give_the_frame_path_numbers(monkeypatch) -> None:
    """Imputer and ComBat on BatchedRows equal the DataFrame path (missing cells, a clinical
    passthrough column, a site unseen in training), and so do nested-CV predictions."""
    df, y = sites_table(150, 6, ["a", "b", "c", "new"], 3)
    df.iloc[::7, 1] = np.nan
    df.insert(6, "clinical__age", np.linspace(30, 80, len(df)))
    train = (df["site"] != "new").to_numpy()
    tr, te = df[train], df[~train]
    rows_tr, rows_te = BatchedRows.from_frame(tr, "site"), BatchedRows.from_frame(te, "site")
    imp_f, imp_r = FrameImputer().fit(tr), FrameImputer().fit(rows_tr)
    comb_f = ComBatHarmoniser(as_frame=False).fit(imp_f.transform(tr))
    comb_r = ComBatHarmoniser(as_frame=False).fit(imp_r.transform(rows_tr))
    for frame, rows in ((tr, rows_tr), (te, rows_te)):
        expected = comb_f.transform(imp_f.transform(frame))
        np.testing.assert_array_equal(comb_r.transform(imp_r.transform(rows)), expected)
        # a pipeline fitted on rows transforms a frame (external validation) the same way
        np.testing.assert_array_equal(comb_r.transform(imp_r.transform(frame)), expected)
    assert not np.isnan(expected).any()

    from radiogenomics.cohort import models

    pipe = build_pipeline("lasso", n_clinical=1)
    grid = {"model__C": [0.05, 1.0]}
    assert isinstance(models.as_batched_rows(pipe, grid, tr), BatchedRows)
    batched = models.nested_cv(pipe, grid, tr, y[train], repeats=2, seed=5)
    monkeypatch.setattr(models, "as_batched_rows", lambda pipe, grid, X: X)
    framed = models.nested_cv(pipe, grid, tr, y[train], repeats=2, seed=5)
    np.testing.assert_array_equal(batched.oof, framed.oof)
