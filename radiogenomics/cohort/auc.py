"""ROC AUC as the Mann-Whitney statistic and its bootstrap confidence intervals (cohort stage:
marker strategies, external validation, virtual biopsy).

The bootstrap is computed for all resamples at once: a resample is a vector of multiplicities
(how often each row was drawn), and the AUC of a resample is the multiplicity-weighted share of
positive/negative pairs ranked correctly (ties count half), which equals the Mann-Whitney AUC of
the resampled rows. A thousand resamples then cost one matrix product instead of a thousand
calls of scikit-learn's validated `roc_auc_score` (90 % of an external validation's time).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half); NaN with one class only."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, float))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def resampled_aucs(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of each resample given as row multiplicities `weights` (resamples x rows); NaN for a
    resample that drew one class only."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, float)
    s1, s0 = score[y], score[~y]
    # pair matrix positives x negatives: 1 ranked correctly, 1/2 tied
    pairs = (s1[:, None] > s0[None, :]) + 0.5 * (s1[:, None] == s0[None, :])
    w1, w0 = weights[:, y], weights[:, ~y]
    num = np.einsum("bi,ij,bj->b", w1, pairs, w0)
    den = w1.sum(axis=1) * w0.sum(axis=1)
    out = np.full(len(weights), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def bootstrap_auc_ci(
    y: np.ndarray,
    p: np.ndarray,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC; resamples with one class only are skipped.

    With `groups` the resampling unit is the group (cluster bootstrap: a subject drawn brings
    all of its samples), as sample-level biopsy labels of one subject are not independent.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(int)
    if groups is None:
        draws = rng.integers(0, len(y), (n, len(y)))
        weights = np.zeros((n, len(y)))
        np.add.at(weights, (np.arange(n)[:, None], draws), 1.0)
    else:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = int(inverse.max()) + 1
        draws = rng.integers(0, n_groups, (n, n_groups))
        per_group = np.zeros((n, n_groups))
        np.add.at(per_group, (np.arange(n)[:, None], draws), 1.0)
        weights = per_group[:, inverse]
    aucs = resampled_aucs(y, p, weights)
    aucs = aucs[~np.isnan(aucs)]
    if not len(aucs):
        return float("nan"), float("nan")
    lo, hi = np.quantile(aucs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
