"""Cohort and biopsy stages: an L1-penalised (LASSO) logistic regression on every scikit-learn.

scikit-learn 1.8 deprecated `penalty` (removal planned for 1.10) and reads the penalty from
`l1_ratio` instead; before 1.8, `l1_ratio` is ignored unless `penalty="elasticnet"`, so
`l1_ratio=1.0` alone silently fits an L2 (ridge) model there. The keyword set is therefore
chosen by version: `penalty="l1"` before 1.8, `l1_ratio=1.0` from 1.8 on.
"""

from __future__ import annotations

import sklearn
from sklearn.linear_model import LogisticRegression

PENALTY_FROM_L1_RATIO = tuple(int(x) for x in sklearn.__version__.split(".")[:2]) >= (1, 8)


def l1_penalty_kwargs() -> dict:
    """LogisticRegression keywords that select a pure L1 penalty on the installed scikit-learn."""
    return {"l1_ratio": 1.0} if PENALTY_FROM_L1_RATIO else {"penalty": "l1"}


def lasso_logistic(
    C: float = 0.2, seed: int = 0, class_weight: str | None = "balanced", max_iter: int = 5000
) -> LogisticRegression:
    """L1 logistic regression (liblinear, seeded: it shuffles coordinates)."""
    return LogisticRegression(
        C=C,
        solver="liblinear",
        class_weight=class_weight,
        max_iter=max_iter,
        random_state=seed,
        **l1_penalty_kwargs(),
    )
