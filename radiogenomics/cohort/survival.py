"""Survival (cohort stage): out-of-fold Cox risk, KM by risk group and subtype, log-rank, HRs.

The radiomic risk score is out-of-fold: for each fold, imputation, ComBat, scaling, a univariate
Cox-score feature filter and a ridge Cox model (lifelines) are fitted on the training rows and
the held-out rows are scored;
the risk group threshold is the training rows' median risk. The C-index is computed on these
held-out scores only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import CoxPHFitter, KaplanMeierFitter  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402
from lifelines.statistics import logrank_test, multivariate_logrank_test  # noqa: E402
from lifelines.utils import concordance_index  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from radiogenomics.cohort.common import baseline_rows, read_inputs, select_features  # noqa: E402
from radiogenomics.cohort.harmonise import ComBatHarmoniser, FrameImputer  # noqa: E402
from radiogenomics.figures import message_figure, save_figure  # noqa: E402


def feature_pipeline(batch: str, combat: bool = True) -> Pipeline:
    """impute -> ComBat -> scale: the unsupervised part of the survival model."""
    return Pipeline(
        [
            ("impute", FrameImputer(batch=batch)),
            ("combat", ComBatHarmoniser(batch=batch, enabled=combat, as_frame=False)),
            ("scale", StandardScaler()),
        ]
    )


def cox_score_statistics(Z: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Univariate Cox score test (beta = 0, Breslow ties) of every column: U^2 / I."""
    order = np.argsort(time, kind="stable")
    t, Zs = time[order], Z[order]
    # Risk-set sums for "time >= t_i" from reversed cumulative sums.
    s1 = np.cumsum(Zs[::-1], axis=0)[::-1]
    s2 = np.cumsum((Zs**2)[::-1], axis=0)[::-1]
    n = len(t)
    idx = np.flatnonzero(event[order] == 1)
    start = np.searchsorted(t, t[idx], side="left")
    at_risk = (n - start)[:, None]
    mean = s1[start] / at_risk
    U = (Zs[idx] - mean).sum(axis=0)
    info = (s2[start] / at_risk - mean**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(info > 0, U**2 / info, 0.0)


def fit_cox(Z: np.ndarray, time: np.ndarray, event: np.ndarray, penalizer: float) -> CoxPHFitter:
    """Penalised Cox (ridge) on the selected standardised features."""
    df = pd.DataFrame(Z, columns=[f"x{i}" for i in range(Z.shape[1])])
    df["T"], df["E"] = time, event
    cph = CoxPHFitter(penalizer=penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(df, duration_col="T", event_col="E")
    return cph


def _log_hazard(cph: CoxPHFitter, Z: np.ndarray) -> np.ndarray:
    df = pd.DataFrame(Z, columns=[f"x{i}" for i in range(Z.shape[1])])
    return np.log(cph.predict_partial_hazard(df).to_numpy())


def oof_risk(
    X: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    *,
    batch: str = "site",
    top_k: int = 10,
    penalizer: float = 0.1,
    folds: int = 5,
    seed: int = 0,
    combat: bool = True,
) -> pd.DataFrame:
    """Out-of-fold log partial hazard, high-risk flag (training-median cut) and fold per row.

    Per fold: impute/ComBat/scale fitted on the training rows, the `top_k` features by univariate
    Cox score on the training rows, ridge Cox on them; held-out rows are only scored.
    """
    n = len(time)
    risk, high, fold_id = np.full(n, np.nan), np.zeros(n, int), np.zeros(n, int)
    kf = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for f, (tr, te) in enumerate(kf.split(np.zeros(n))):
        fp = feature_pipeline(batch, combat).fit(X.iloc[tr])
        ztr, zte = fp.transform(X.iloc[tr]), fp.transform(X.iloc[te])
        score = cox_score_statistics(ztr, time[tr], event[tr])
        keep = np.argsort(-score, kind="stable")[: max(1, min(top_k, ztr.shape[1]))]
        cph = fit_cox(ztr[:, keep], time[tr], event[tr], penalizer)
        r_tr, r_te = _log_hazard(cph, ztr[:, keep]), _log_hazard(cph, zte[:, keep])
        risk[te] = r_te
        high[te] = (r_te > np.median(r_tr)).astype(int)
        fold_id[te] = f
    return pd.DataFrame({"risk": risk, "high_risk": high, "fold": fold_id})


def c_index(time: np.ndarray, risk: np.ndarray, event: np.ndarray) -> float:
    """Harrell's C: higher risk should mean shorter survival."""
    return float(concordance_index(time, -np.asarray(risk), event))


def logrank(time: np.ndarray, event: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Log-rank test between groups (two groups: pairwise; more: multivariate)."""
    groups = np.asarray(groups)
    levels = sorted(set(groups.tolist()))
    if len(levels) < 2:
        return {"statistic": float("nan"), "p_value": float("nan"), "groups": len(levels)}
    if len(levels) == 2:
        a, b = groups == levels[0], groups == levels[1]
        res = logrank_test(time[a], time[b], event[a], event[b])
    else:
        res = multivariate_logrank_test(time, groups, event)
    return {
        "statistic": float(res.test_statistic),
        "p_value": float(res.p_value),
        "groups": len(levels),
    }


def km_plot(path, time, event, groups, title: str, labels: Mapping[Any, str] | None = None) -> None:
    """Kaplan-Meier curves per group with at-risk counts below the axis."""
    fig, ax = plt.subplots(figsize=(6, 5))
    fitters = []
    for g in sorted(set(np.asarray(groups).tolist())):
        m = np.asarray(groups) == g
        kmf = KaplanMeierFitter(label=(labels or {}).get(g, str(g)))
        kmf.fit(time[m], event[m])
        kmf.plot_survival_function(ax=ax, ci_show=False)
        fitters.append(kmf)
    ax.set(xlabel="days", ylabel="survival probability", title=title)
    if fitters:
        add_at_risk_counts(*fitters, ax=ax)
    fig.tight_layout()
    save_figure(fig, path)


def hazard_ratios(
    df: pd.DataFrame, covariates: list[str], time: str, event: str, penalizer: float
) -> pd.DataFrame:
    """Multivariable Cox HRs with 95 % CI and p (rows with missing covariates dropped)."""
    d = df[[*covariates, time, event]].dropna()
    d = d.loc[:, d.std(numeric_only=True) > 0]
    covs = [c for c in covariates if c in d.columns]
    if len(d) < 10 or not covs:
        return pd.DataFrame(columns=["covariate", "hr", "hr_ci_low", "hr_ci_high", "p", "n"])
    cph = CoxPHFitter(penalizer=penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(d, duration_col=time, event_col=event)
    s = cph.summary
    return pd.DataFrame(
        {
            "covariate": s.index.astype(str),
            "hr": s["exp(coef)"].to_numpy(),
            "hr_ci_low": s["exp(coef) lower 95%"].to_numpy(),
            "hr_ci_high": s["exp(coef) upper 95%"].to_numpy(),
            "p": s["p"].to_numpy(),
            "n": len(d),
        }
    )


def run_survival(
    features: str, labels: str, dropped: str | None, subtypes: str, settings: dict, outdir: str
) -> None:
    """Rule survival_analysis: OOF Cox risk, C-index, KM + log-rank by risk group and subtype."""
    from pathlib import Path

    from radiogenomics.io import read_tsv, write_tsv

    out = Path(outdir)
    sv = settings["survival"]
    batch = settings["combat"]["batch_column"]
    feats, labs, drop = read_inputs(features, labels, dropped)
    rows = baseline_rows(feats[feats["role"] == "discovery"])
    df = rows.merge(
        labs.drop(columns=[c for c in ("site", "scanner") if c in labs.columns]),
        on=["cohort", "subject"],
        how="inner",
    )
    tcol, ecol = sv["time"], sv["event"]
    if tcol in df.columns and ecol in df.columns:
        df = df[df[tcol].notna() & df[ecol].notna() & (df[tcol] > 0)].reset_index(drop=True)
    else:
        df = df.iloc[0:0]
    cols = select_features(list(feats.columns), tuple(sv["features"]), drop)
    metrics: list[dict] = []
    n_events = int(df[ecol].sum()) if len(df) else 0
    if len(df) < sv["min_subjects"] or n_events < sv["min_events"] or not cols:
        msg = f"not run: {len(df)} subjects, {n_events} events, {len(cols)} features"
        write_tsv(
            pd.DataFrame([{"analysis": "survival", "status": "not_run", "message": msg}]),
            out / "metrics.tsv",
        )
        write_tsv(
            pd.DataFrame(columns=["cohort", "subject", "session", "risk", "high_risk"]),
            out / "risk.tsv",
        )
        write_tsv(pd.DataFrame(columns=["covariate", "hr"]), out / "hazard_ratios.tsv")
        for name in ("km_risk.png", "km_subtype.png"):
            message_figure(out / name, msg)
        return
    time, event = df[tcol].to_numpy(float), df[ecol].to_numpy(int)
    X = df[cols].astype(float)
    X[batch] = df[batch].astype(str).to_numpy()
    risk = oof_risk(
        X,
        time,
        event,
        batch=batch,
        top_k=sv["top_k"],
        penalizer=sv["penalizer"],
        folds=sv["folds"],
        seed=int(settings["seed"]),
        combat=settings["combat"]["enabled"],
    )
    fold_c = [
        c_index(time[risk.fold == f], risk.risk[risk.fold == f].to_numpy(), event[risk.fold == f])
        for f in sorted(set(risk.fold))
    ]
    metrics.append(
        {
            "analysis": "cox_oof",
            "status": "ok",
            "message": "",
            "n": len(df),
            "events": n_events,
            "c_index": c_index(time, risk.risk.to_numpy(), event),
            "c_index_fold_mean": float(np.mean(fold_c)),
            "c_index_fold_sd": float(np.std(fold_c, ddof=1)),
        }
    )
    lr = logrank(time, event, risk.high_risk.to_numpy())
    metrics.append(
        {
            "analysis": "logrank_risk_group",
            "status": "ok",
            "message": "",
            "n": len(df),
            "events": n_events,
            **lr,
        }
    )
    km_plot(
        out / "km_risk.png",
        time,
        event,
        risk.high_risk.to_numpy(),
        f"OOF radiomic risk (C = {metrics[0]['c_index']:.3f}, log-rank p = {lr['p_value']:.2g})",
        {0: "low risk", 1: "high risk"},
    )
    st = read_tsv(subtypes, dtype={"cohort": str, "subject": str, "session": str})
    m = df[["cohort", "subject", "session"]].merge(st, how="left")["subtype"].to_numpy()
    ok = ~pd.isna(m)
    if ok.sum() >= sv["min_subjects"] and len(set(m[ok])) >= 2:
        lr_s = logrank(time[ok], event[ok], m[ok].astype(int))
        metrics.append(
            {
                "analysis": "logrank_subtype",
                "status": "ok",
                "message": "",
                "n": int(ok.sum()),
                "events": int(event[ok].sum()),
                **lr_s,
            }
        )
        km_plot(
            out / "km_subtype.png",
            time[ok],
            event[ok],
            m[ok].astype(int),
            f"imaging subtypes (log-rank p = {lr_s['p_value']:.2g})",
            {g: f"subtype {g}" for g in set(m[ok].astype(int))},
        )
    else:
        message_figure(out / "km_subtype.png", "subtypes not available for survival rows")
    df["radiomic_risk"] = (risk.risk - risk.risk.mean()) / risk.risk.std(ddof=0)
    if "sex" in df.columns:
        df["sex_male"] = df["sex"].map({"M": 1.0, "F": 0.0})
    covs = ["radiomic_risk"] + [
        ("sex_male" if c == "sex" else c)
        for c in sv["covariates"]
        if ("sex_male" if c == "sex" else c) in df.columns
    ]
    write_tsv(hazard_ratios(df, covs, tcol, ecol, sv["penalizer"]), out / "hazard_ratios.tsv")
    risk_out = df[["cohort", "subject", "session"]].copy()
    risk_out[["risk", "high_risk", "fold"]] = risk[["risk", "high_risk", "fold"]].to_numpy()
    write_tsv(risk_out, out / "risk.tsv")
    write_tsv(pd.DataFrame(metrics), out / "metrics.tsv")
