"""AUC and its bootstrap CIs (cohort stage) against scikit-learn's roc_auc_score per resample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radiogenomics.cohort.auc import bootstrap_auc_ci, rank_auc, resampled_aucs


def _reference_ci(y, p, n, seed, groups=None, alpha=0.05):
    """The plain loop: draw, skip one-class resamples, roc_auc_score, percentiles."""
    rng = np.random.default_rng(seed)
    aucs = []
    if groups is not None:
        ids, inverse = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inverse == g) for g in range(len(ids))]
    for _ in range(n):
        if groups is None:
            idx = rng.integers(0, len(y), len(y))
        else:
            idx = np.concatenate([members[g] for g in rng.integers(0, len(ids), len(ids))])
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], p[idx]))
    return tuple(np.quantile(aucs, [alpha / 2, 1 - alpha / 2]))


@pytest.mark.parametrize("n_rows", [8, 37, 120])
def test_bootstrap_ci_equals_the_resample_loop(n_rows: int) -> None:
    rng = np.random.default_rng(n_rows)
    y = rng.integers(0, 2, n_rows)
    y[:2] = [0, 1]
    p = np.round(rng.random(n_rows) * 0.7 + 0.3 * y, 1)  # rounded: many ties
    groups = np.arange(n_rows) // 3
    assert bootstrap_auc_ci(y, p, 400, 5) == pytest.approx(_reference_ci(y, p, 400, 5), abs=1e-12)
    assert bootstrap_auc_ci(y, p, 400, 5, groups=groups) == pytest.approx(
        _reference_ci(y, p, 400, 5, groups), abs=1e-12
    )


def test_resampled_aucs_weights_and_one_class_resamples() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.6, 0.4, 0.9])
    weights = np.array([[1, 1, 1, 1, 1], [2, 0, 1, 0, 2], [0, 0, 3, 1, 1]], float)
    out = resampled_aucs(y, p, weights)
    assert out[0] == pytest.approx(roc_auc_score(y, p))
    idx = np.array([0, 0, 2, 4, 4])
    assert out[1] == pytest.approx(roc_auc_score(y[idx], p[idx]))
    assert np.isnan(out[2])
    assert rank_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert np.isnan(rank_auc(np.ones(4), np.arange(4)))


def test_no_signal_ci_covers_one_half() -> None:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 200)
    lo, hi = bootstrap_auc_ci(y, rng.random(200), 1000, 0)
    assert lo < 0.5 < hi and hi - lo < 0.2
