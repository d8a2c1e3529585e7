"""CNNClassifier: planted signal learnt out of fold, shuffled labels at chance, byte-identical
reruns, inside cohort.models' nested CV, rows without a crop, augmentation geometry."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from radiogenomics.cohort.models import nested_cv
from radiogenomics.deep.crops import CropArray
from radiogenomics.deep.synthetic import planted_crops
from radiogenomics.deep.train import CNNClassifier, augment

# 40 subjects, 2 channels, 24^3 crops: the blob in channel 0 is brighter in positives.
FAST = {"epochs": 40, "seed": 11}


@pytest.fixture(scope="module")
def planted():
    return planted_crops(n=40, channels=2, size=24, effect=1.0, seed=1)


def oof(X, y, seed: int = 0, **params) -> np.ndarray:
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    est = CNNClassifier(**{**FAST, **params})
    return cross_val_predict(est, X, y, cv=cv, method="predict_proba")[:, 1]


def test_planted_signal_out_of_fold_auc(planted):
    X, y = planted
    auc = roc_auc_score(y, oof(X, y))
    assert auc >= 0.85, auc


def test_shuffled_labels_are_at_chance(planted):
    X, y = planted
    rng = np.random.default_rng(2024)
    aucs = []
    for i in range(2):
        ys = rng.permutation(y)
        aucs.append(roc_auc_score(ys, oof(X, ys, seed=i)))
    assert 0.35 <= float(np.mean(aucs)) <= 0.65, aucs


def test_two_runs_give_byte_identical_predictions(planted):
    X, y = planted
    est = CNNClassifier(epochs=6, min_epochs=2, seed=5)
    a = clone(est).fit(X[:30], y[:30]).predict_proba(X[30:])
    # Global RNG state and thread count must not leak into a fit.
    torch.manual_seed(999)
    np.random.seed(3)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fitted = clone(est).fit(X[:30], y[:30])
    finally:
        torch.set_num_threads(threads)
    b = fitted.predict_proba(X[30:])
    assert a.tobytes() == b.tobytes()
    # joblib persistence (model.joblib) gives the same bytes too.
    buf = io.BytesIO()
    joblib.dump(fitted, buf)
    buf.seek(0)
    assert joblib.load(buf).predict_proba(X[30:]).tobytes() == a.tobytes()
    # Another seed is another model.
    c = clone(est).set_params(seed=6).fit(X[:30], y[:30]).predict_proba(X[30:])
    assert c.tobytes() != a.tobytes()


def test_runs_inside_the_cohort_nested_cv(planted):
    X, y = planted
    pipe = Pipeline([("model", CNNClassifier(epochs=4, min_epochs=2, seed=3))])
    kw = {"outer_folds": 3, "repeats": 1, "seed": 9}
    serial = nested_cv(pipe, {}, CropArray(X), y, n_jobs=1, **kw)
    parallel = nested_cv(pipe, {}, CropArray(X), y, n_jobs=2, **kw)
    assert np.isfinite(serial.oof).all() and serial.oof.shape == (1, 40)
    assert serial.oof.tobytes() == parallel.oof.tobytes()


def test_rows_without_a_crop_are_skipped_and_get_the_prevalence(planted):
    X, y = planted
    Xn = X[:30].copy()
    Xn[[0, 5]] = np.nan
    est = CNNClassifier(epochs=3, min_epochs=1, seed=1).fit(Xn, y[:30])
    assert est.n_skipped_ == 2 and est.n_train_ + est.n_val_ == 28
    assert est.prevalence_ == pytest.approx(np.delete(y[:30], [0, 5]).mean())
    p = est.predict_proba(Xn[:6])
    assert p[0, 1] == est.prevalence_ and p[5, 1] == est.prevalence_
    assert np.allclose(p.sum(axis=1), 1.0) and np.isfinite(p).all()
    with pytest.raises(ValueError, match="trained on"):
        est.predict_proba(X[:2, :1])


def test_early_stopping_uses_an_inner_split_of_the_training_rows(planted):
    X, y = planted
    est = CNNClassifier(epochs=30, min_epochs=2, patience=3, val_fraction=0.25, seed=2).fit(X, y)
    assert est.n_val_ == 10 and est.n_train_ == 30
    hist = est.history_  # epoch, training loss, validation loss
    eligible = np.where(hist[:, 0] >= 2, hist[:, 2], np.inf)
    assert est.best_epoch_ == int(hist[np.argmin(eligible), 0])
    stop = int(hist[-1, 0])
    assert stop == 30 or stop - est.best_epoch_ == 3


def test_augmentation_flips_are_exact_and_masks_keep_their_values():
    x = torch.arange(2 * 2 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 2, 4, 5, 6)

    class AlwaysFlip:
        def random(self, n):
            return np.zeros(n)

        def uniform(self, lo, hi, size):
            return np.zeros(size)

        def normal(self, mu, sd, size):
            return np.full(size, 0.5)

    for axis in (0, 1, 2):
        out = augment(x, AlwaysFlip(), flip_axes=(axis,), rotate_deg=0.0, jitter=0.0,
                      intensity=np.array([True, False]))  # fmt: skip
        assert torch.allclose(out, x.flip(axis + 2), atol=1e-4)
    out = augment(x, AlwaysFlip(), flip_axes=(), rotate_deg=0.0, jitter=0.2,
                  intensity=np.array([True, False]))  # fmt: skip
    assert torch.allclose(out[:, 0], x[:, 0] * np.exp(0.5) + 0.5)
    assert torch.equal(out[:, 1], x[:, 1])


def test_sklearn_parameters_round_trip():
    est = CNNClassifier(widths=(4, 8), blocks=(1, 2), epochs=7)
    c = clone(est)
    assert c.get_params() == est.get_params() and c.get_params()["blocks"] == (1, 2)
    c.set_params(epochs=3, checkpoint="x.pt")
    assert (c.epochs, c.checkpoint) == (3, "x.pt")
    with pytest.raises(ValueError, match="expects crops"):
        est.fit(np.zeros((4, 10)), np.array([0, 1, 0, 1]))
