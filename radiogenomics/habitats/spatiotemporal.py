"""Habitats stage: spatiotemporal habitat change and its association with progression and PFS.

For each subject with at least two analysable sessions, habitat volumes of the first and last
session (sessions in natural sort order: ``2`` before ``10``; ``baseline`` etc. sort as text)
give the change: absolute (ml) and relative ((last - first) / first; NaN when the habitat was
absent at first). Each change is related to the outcome one habitat at a time:

* progression (canonical ``progression``, 1 = true progression): logistic regression, odds ratio
  per SD of the change, Wald 95 % CI and p (statsmodels);
* PFS (``pfs_days``, ``pfs_event``): Cox proportional hazards, hazard ratio per SD of the change,
  95 % CI and p (lifelines).

Pseudoprogression vs progression is also predicted from all habitat-change features together and
from single-parameter mean nADC / rCBV change, compared in the same repeated nested CV splits.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from lifelines import CoxPHFitter
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from radiogenomics.habitats.plots import plot_forest
from radiogenomics.io import read_tsv, write_tsv

log = logging.getLogger(__name__)

ID = ["cohort", "subject"]
CHANGE_KINDS = ("delta_ml", "rel_change")
MIN_PER_CLASS = 3


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers numerically (ses-2 before ses-10)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def read_fractions(paths: list[str | Path]) -> pd.DataFrame:
    """Concatenate per-session fraction tables, skipping failed subjects' empty placeholders."""
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists() or p.stat().st_size == 0:
            log.warning("skipping missing/failed habitat table %s", p)
            continue
        frames.append(
            read_tsv(p, dtype={"cohort": str, "subject": str, "session": str}, keep_default_na=True)
        )
    if not frames:
        return pd.DataFrame(columns=["cohort", "subject", "session", "qc_reason"])
    out = pd.concat(frames, ignore_index=True)
    out["qc_reason"] = out.get("qc_reason", pd.Series("", index=out.index)).fillna("")
    return out


def habitat_names(fractions: pd.DataFrame) -> list[str]:
    """Habitat names present as ``habitat__{name}__volume_ml`` columns, in column order."""
    return [
        c.split("__")[1]
        for c in fractions.columns
        if c.startswith("habitat__") and c.endswith("__volume_ml")
    ]


def mean_columns(fractions: pd.DataFrame) -> list[str]:
    """Per-map ROI mean columns (``habitat__{map}__{roi}__mean``)."""
    return [c for c in fractions.columns if c.startswith("habitat__") and c.endswith("__mean")]


def habitat_changes(fractions: pd.DataFrame) -> pd.DataFrame:
    """First-to-last change per subject with >= 2 sessions without a ``qc_reason``."""
    ok = fractions[fractions["qc_reason"].fillna("") == ""]
    names, means = habitat_names(fractions), mean_columns(fractions)
    rows = []
    for (cohort, subject), g in ok.groupby(ID, sort=True):
        if len(g) < 2:
            continue
        g = g.iloc[sorted(range(len(g)), key=lambda i: natural_key(g["session"].iloc[i]))]
        first, last = g.iloc[0], g.iloc[-1]
        row = {
            "cohort": cohort,
            "subject": subject,
            "session_first": first["session"],
            "session_last": last["session"],
            "n_sessions": len(g),
        }
        for n in names:
            v0, v1 = (
                float(first[f"habitat__{n}__volume_ml"]),
                float(last[f"habitat__{n}__volume_ml"]),
            )
            f0, f1 = float(first[f"habitat__{n}__fraction"]), float(last[f"habitat__{n}__fraction"])
            row[f"{n}__volume_ml_first"] = v0
            row[f"{n}__volume_ml_last"] = v1
            row[f"{n}__delta_ml"] = v1 - v0
            row[f"{n}__rel_change"] = (v1 - v0) / v0 if v0 > 0 else float("nan")
            row[f"{n}__delta_fraction"] = f1 - f0
        for c in means:
            row[f"{c.split('__')[1]}__delta_mean"] = float(last[c]) - float(first[c])
        rows.append(row)
    return pd.DataFrame(rows)


def merge_labels(changes: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Attach canonical outcome columns (on cohort+subject when labels carry a cohort column)."""
    labels = labels.copy()
    labels["subject"] = labels["subject"].astype(str)
    keys = ID if "cohort" in labels.columns else ["subject"]
    if "cohort" in labels.columns:
        labels["cohort"] = labels["cohort"].astype(str)
    cols = keys + [c for c in ("progression", "pfs_days", "pfs_event") if c in labels.columns]
    out = changes.merge(labels[cols].drop_duplicates(keys), on=keys, how="left")
    for c in ("progression", "pfs_days", "pfs_event"):
        out[c] = pd.to_numeric(out[c], errors="coerce") if c in out else np.nan
    return out


def zscore(x: pd.Series) -> tuple[np.ndarray, float]:
    """Standardised values and the SD used (per-SD effect sizes)."""
    sd = float(x.std(ddof=1))
    return ((x - x.mean()) / sd).to_numpy(float), sd


def _firth_fit(
    x: np.ndarray, y: np.ndarray, fixed: dict[int, float] | None = None, max_iter: int = 200
) -> tuple[np.ndarray, float, np.ndarray]:
    """Firth-penalised logistic fit (coefficients, penalised log-likelihood, covariance).

    Maximises l(b) + 0.5 log|I(b)| (Jeffreys prior), which stays finite under separation.
    Coefficients in `fixed` are held at the given values (restricted fits for the penalised
    likelihood-ratio test and profile CI, as in Heinze & Schemper 2002 / R logistf).
    """
    fixed = fixed or {}
    free = np.array([j for j in range(x.shape[1]) if j not in fixed])
    beta = np.zeros(x.shape[1])
    for j, v in fixed.items():
        beta[j] = v

    def pll(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        pi = np.clip(1 / (1 + np.exp(-(x @ b))), 1e-12, 1 - 1e-12)
        w = pi * (1 - pi)
        info = x.T @ (x * w[:, None])
        sign, logdet = np.linalg.slogdet(info)
        ll = float(np.sum(y * np.log(pi) + (1 - y) * np.log(1 - pi)) + 0.5 * logdet)
        return ll, pi, w, info

    ll, pi, w, info = pll(beta)
    for _ in range(max_iter):
        cov = np.linalg.inv(info)
        h = np.einsum("ij,jk,ik->i", x, cov, x) * w
        score = x.T @ (y - pi + h * (0.5 - pi))
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        step = np.clip(step, -5, 5)  # damped Newton: no jump past the penalised optimum
        for _half in range(30):
            cand = beta + step
            ll_new, pi_new, w_new, info_new = pll(cand)
            if ll_new >= ll - 1e-12:
                break
            step = step / 2
        converged = np.max(np.abs(cand - beta)) < 1e-9
        beta, ll, pi, w, info = cand, ll_new, pi_new, w_new, info_new
        if converged:
            break
    return beta, ll, np.linalg.inv(info)


def firth_or(z: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Firth logistic slope of standardised `z`: (OR, profile 95 % CI low, high, penalised LR p)."""
    from scipy.optimize import brentq
    from scipy.stats import chi2

    x = np.column_stack([np.ones_like(z), z])
    beta, ll, _ = _firth_fit(x, y)
    crit = chi2.ppf(0.95, 1) / 2

    def drop(b1: float) -> float:
        return ll - _firth_fit(x, y, fixed={1: b1})[1] - crit

    p = float(chi2.sf(max(2 * (ll - _firth_fit(x, y, fixed={1: 0.0})[1]), 0.0), 1))
    bounds = []
    for direction in (-1, 1):
        far = beta[1] + direction * 1.0
        while drop(far) < 0 and abs(far - beta[1]) < 50:
            far = beta[1] + 2 * (far - beta[1])
        bounds.append(brentq(drop, beta[1], far) if drop(far) > 0 else direction * np.inf)
    return float(np.exp(beta[1])), float(np.exp(bounds[0])), float(np.exp(bounds[1])), p


def logistic_or(x: pd.Series, y: pd.Series) -> dict[str, float | str]:
    """Odds ratio per SD of `x` for binary `y` with 95 % CI and p.

    Maximum likelihood (Wald CI and p) when it exists; under (quasi-)complete separation,
    where the MLE is infinite, Firth's penalised likelihood (profile CI, penalised LR p).
    """
    d = pd.DataFrame({"x": x, "y": y}).dropna()
    n_pos = int(d["y"].sum())
    res: dict[str, float | str] = {"n": len(d), "n_events": n_pos}
    nan = {
        "odds_ratio": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
        "sd_of_change": np.nan,
    }
    if min(n_pos, len(d) - n_pos) < MIN_PER_CLASS or d["x"].nunique() < 3:
        return {**res, **nan, "note": f"too few subjects per class (need >= {MIN_PER_CLASS})"}
    z, sd = zscore(d["x"])
    yv = d["y"].to_numpy(float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(yv, sm.add_constant(z)).fit(disp=0, maxiter=200)
        b, se = float(fit.params[1]), float(fit.bse[1])
        # (Quasi-)complete separation: the MLE runs off to infinity; an OR per SD above e^8
        # (~3000) is not a finite estimate but a sign of it.
        separated = not fit.mle_retvals.get("converged", True) or not np.isfinite(se) or abs(b) > 8
    except Exception:  # noqa: BLE001 - statsmodels raises on perfect separation
        separated = True
    if separated:
        odds, lo, hi, p = firth_or(z, yv)
        return {
            **res,
            "odds_ratio": odds,
            "ci_low": lo,
            "ci_high": hi,
            "p": p,
            "sd_of_change": sd,
            "note": "separation: Firth penalised likelihood",
        }
    return {
        **res,
        "odds_ratio": np.exp(b),
        "ci_low": np.exp(b - 1.959964 * se),
        "ci_high": np.exp(b + 1.959964 * se),
        "p": float(fit.pvalues[1]),
        "sd_of_change": sd,
        "note": "",
    }


def cox_hr(x: pd.Series, time: pd.Series, event: pd.Series) -> dict[str, float | str]:
    """Hazard ratio per SD of `x` for PFS with 95 % CI and p (Cox PH)."""
    d = pd.DataFrame({"x": x, "t": time, "e": event}).dropna()
    d = d[d["t"] > 0]
    res: dict[str, float | str] = {"n": len(d), "n_events": int(d["e"].sum())}
    nan = {
        "hazard_ratio": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
        "sd_of_change": np.nan,
    }
    if res["n_events"] < MIN_PER_CLASS or d["x"].nunique() < 3:
        return {**res, **nan, "note": f"too few events (need >= {MIN_PER_CLASS})"}
    d["x"], sd = zscore(d["x"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter().fit(d, duration_col="t", event_col="e")
        s = cph.summary.loc["x"]
    except Exception as exc:  # noqa: BLE001 - convergence failure is a reportable outcome
        return {
            **res,
            **nan,
            "sd_of_change": sd,
            "note": f"not estimable: {type(exc).__name__}: {exc}",
        }
    return {
        **res,
        "hazard_ratio": float(s["exp(coef)"]),
        "ci_low": float(s["exp(coef) lower 95%"]),
        "ci_high": float(s["exp(coef) upper 95%"]),
        "p": float(s["p"]),
        "sd_of_change": sd,
        "note": "",
    }


def scopes(data: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Pooled analysis plus one per cohort when there are several cohorts."""
    out = [("all", data)]
    if data["cohort"].nunique() > 1:
        out += [(str(c), g) for c, g in data.groupby("cohort", sort=True)]
    return out


def association_tables(data: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per habitat and change kind: OR for progression and HR for PFS (per SD of the change)."""
    or_rows, hr_rows = [], []
    for scope, d in scopes(data):
        for n in names:
            for kind in CHANGE_KINDS:
                col = f"{n}__{kind}"
                if col not in d:
                    continue
                key = {"scope": scope, "habitat": n, "change": kind}
                or_rows.append({**key, **logistic_or(d[col], d["progression"])})
                hr_rows.append({**key, **cox_hr(d[col], d["pfs_days"], d["pfs_event"])})
    cols_or = [
        "scope",
        "habitat",
        "change",
        "n",
        "n_events",
        "odds_ratio",
        "ci_low",
        "ci_high",
        "p",
        "sd_of_change",
        "note",
    ]
    cols_hr = [c if c != "odds_ratio" else "hazard_ratio" for c in cols_or]
    return pd.DataFrame(or_rows, columns=cols_or), pd.DataFrame(hr_rows, columns=cols_hr)


def feature_sets(data: pd.DataFrame, names: list[str]) -> dict[str, list[str]]:
    """Habitat-change features vs single-parameter mean-change comparators present in `data`."""
    sets: dict[str, list[str]] = {}
    hab = [
        f"{n}__{k}" for n in names for k in ("delta_ml", "delta_fraction") if f"{n}__{k}" in data
    ]
    if hab:
        sets["habitat_change"] = hab
    for c in data.columns:
        if c.endswith("__delta_mean"):
            sets[f"{c.split('__')[0]}_mean_change"] = [c]
    return sets


def nested_cv_auc(
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    inner_folds: int,
    seed: int,
) -> np.ndarray:
    """Outer-fold AUCs of an L2 logistic pipeline whose C is tuned by inner stratified CV."""
    pipe = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )
    aucs = []
    for train, test in splits:
        n_inner = min(inner_folds, int(np.bincount(y[train].astype(int)).min()))
        if n_inner >= 2:
            inner = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed)
            est = GridSearchCV(
                pipe, {"model__C": [0.01, 0.1, 1.0, 10.0]}, cv=inner, scoring="roc_auc"
            )
        else:
            est = pipe
        est.fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], est.predict_proba(x[test])[:, 1]))
    return np.asarray(aucs)


def compare_classifiers(
    data: pd.DataFrame,
    names: list[str],
    seed: int,
    outer_folds: int = 5,
    repeats: int = 5,
    inner_folds: int = 3,
) -> pd.DataFrame:
    """Nested-CV AUC of habitat-change features vs single-parameter comparators (same splits)."""
    d = data.dropna(subset=["progression"]).reset_index(drop=True)
    y = d["progression"].to_numpy(int)
    sets = feature_sets(d, names)
    cols = [
        "feature_set",
        "features",
        "n",
        "n_progression",
        "outer_folds",
        "repeats",
        "auc_mean",
        "auc_sd",
        "auc_diff_vs_habitat",
        "note",
    ]
    n_min = int(np.bincount(y, minlength=2).min()) if len(y) else 0
    k = min(outer_folds, n_min)
    if k < 2 or not sets:
        note = (
            "no feature sets" if not sets else f"too few subjects per class ({n_min}) for nested CV"
        )
        return pd.DataFrame(
            [
                {
                    "feature_set": s,
                    "features": ",".join(f),
                    "n": len(d),
                    "n_progression": int(y.sum()),
                    "note": note,
                }
                for s, f in sets.items()
            ],
            columns=cols,
        )
    rskf = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    splits = list(rskf.split(np.zeros(len(y)), y))
    aucs = {
        s: nested_cv_auc(d[f].to_numpy(float), y, splits, inner_folds, seed)
        for s, f in sets.items()
    }
    ref = aucs.get("habitat_change")
    rows = []
    for s, f in sets.items():
        a = aucs[s]
        rows.append(
            {
                "feature_set": s,
                "features": ",".join(f),
                "n": len(d),
                "n_progression": int(y.sum()),
                "outer_folds": k,
                "repeats": repeats,
                "auc_mean": float(a.mean()),
                "auc_sd": float(a.std(ddof=1)),
                "auc_diff_vs_habitat": float((ref - a).mean()) if ref is not None else np.nan,
                "note": "",
            }
        )
    return pd.DataFrame(rows, columns=cols)


def run_spatiotemporal(
    fraction_paths: list[str | Path],
    labels_path: str | Path,
    outputs: dict[str, str | Path],
    seed: int = 0,
    outer_folds: int = 5,
    repeats: int = 5,
    inner_folds: int = 3,
) -> dict[str, pd.DataFrame]:
    """Rule entry point: changes, OR/HR tables, forest plot and the progression classifier table."""
    fractions = read_fractions(fraction_paths)
    names = habitat_names(fractions)
    changes = habitat_changes(fractions)
    labels = read_tsv(labels_path, dtype={"subject": str, "cohort": str})
    if changes.empty:
        changes = pd.DataFrame(columns=ID + ["session_first", "session_last", "n_sessions"])
    data = merge_labels(changes, labels)
    log.info(
        "%d subjects with >= 2 analysable sessions; %d with a progression label",
        len(data),
        int(data["progression"].notna().sum()),
    )
    or_t, hr_t = association_tables(data, names)
    clf = compare_classifiers(data, names, seed, outer_folds, repeats, inner_folds)
    write_tsv(data, outputs["changes"])
    write_tsv(or_t, outputs["odds_ratios"])
    write_tsv(hr_t, outputs["hazard_ratios"])
    write_tsv(clf, outputs["classifier"])
    plot_forest(or_t, hr_t, outputs["forest"])
    return {"changes": data, "odds_ratios": or_t, "hazard_ratios": hr_t, "classifier": clf}
