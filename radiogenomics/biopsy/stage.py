"""Biopsy stage entry points (rules biopsy_features, biopsy_model, biopsy_maps).

Discovery cohorts' samples train the sample-level model (subject-grouped CV, shuffled-label
control, refit on all discovery samples); a validation cohort's samples are only predicted by the
refitted model (external sample-level AUC). Every imaged session of every cohort gets a
probability map of the marker over its tumour ROI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from radiogenomics.biopsy.features import (  # noqa: E402
    DENSE_STATS,
    FAILURE_COLUMNS,
    SphereParams,
    biopsy_features,
)
from radiogenomics.biopsy.model import (  # noqa: E402
    biopsy_metrics,
    run_biopsy_model,
    sample_targets,
)
from radiogenomics.biopsy.probmap import write_probability_map  # noqa: E402
from radiogenomics.biopsy.table import read_biopsy_table  # noqa: E402
from radiogenomics.cohort.auc import rank_auc  # noqa: E402
from radiogenomics.errors import SubjectError  # noqa: E402
from radiogenomics.figures import message_figure, save_figure  # noqa: E402
from radiogenomics.io import atomic_path, read_tsv, write_tsv  # noqa: E402
from radiogenomics.paths import subject_dir  # noqa: E402

log = logging.getLogger(__name__)
IDS = {"cohort": str, "subject": str, "session": str, "sample_id": str}
METRIC_COLUMNS = [
    "marker", "set", "cohort", "status", "message", "model", "n_features", "folds", "n_samples",
    "n_subjects", "n_pos", "n_neg", "auc", "auc_ci_low", "auc_ci_high", "balanced_accuracy",
    "brier", "shuffled_auc_mean", "shuffled_auc_sd", "permutation_p", "n_permutations",
]  # fmt: skip


def sphere_params(settings: Mapping[str, Any]) -> SphereParams:
    """SphereParams from the `biopsy` config section."""
    return SphereParams.from_config(settings["sphere"])


def run_biopsy_features(
    tables: Mapping[str, str],
    roles: Mapping[str, str],
    sessions: list[Mapping[str, str]],
    settings: Mapping[str, Any],
    out_features: str,
    out_failures: str,
    root: str | Path = "results",
) -> None:
    """Rule biopsy_features: sphere features of every sample of every cohort's biopsy table."""
    frames, failures = [], []
    for cohort, path in sorted(tables.items()):
        known = [(s["subject"], s["session"]) for s in sessions if s["cohort"] == cohort]
        table = read_biopsy_table(path, known_sessions=known)
        feats, fails = biopsy_features(
            table, cohort, sphere_params(settings), root, settings["sequences"]
        )
        log.info("%s: %d samples, %d failures", cohort, len(feats), len(fails))
        if len(feats):
            frames.append(feats.assign(role=roles[cohort]))
        failures.append(fails)
    feats = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*IDS, "role"])
    write_tsv(feats, out_features)
    write_tsv(pd.concat(failures, ignore_index=True) if failures else
              pd.DataFrame(columns=list(FAILURE_COLUMNS)), out_failures)  # fmt: skip


def permutation_p(
    features: pd.DataFrame, marker: str, observed: float, n: int, seed: int, **kwargs
) -> dict:
    """Sample labels permuted (the whole grouped CV, tuning included): null AUCs, p-value."""
    rng = np.random.default_rng(seed + 7919)
    aucs = []
    for i in range(n):
        shuffled = features.copy()
        shuffled[marker] = rng.permutation(features[marker].to_numpy())
        m, _, _ = run_biopsy_model(
            shuffled, marker, seed=seed + 1000 + i, n_boot=0, refit=False, **kwargs
        )
        aucs.append(m["auc"])
    arr = np.array(aucs)
    return {
        "shuffled_auc_mean": float(arr.mean()) if n else np.nan,
        "shuffled_auc_sd": float(arr.std(ddof=1)) if n > 1 else np.nan,
        "permutation_p": (1 + int((arr >= observed).sum())) / (n + 1) if n else np.nan,
        "n_permutations": int(n),
    }


def _roc_figure(path: str, preds: pd.DataFrame, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, sub in preds.groupby("set", sort=False):
        if sub["y"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(sub["y"], sub["prob"])
        ax.plot(fpr, tpr, label=f"{name}: AUC {rank_auc(sub['y'], sub['prob']):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="k", lw=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=7)
    save_figure(fig, path)


def run_biopsy_model_rule(
    features: str, marker: str, settings: Mapping[str, Any], seed: int, out: Mapping[str, str]
) -> None:
    """Rule biopsy_model: grouped CV + control on discovery samples, refit, validation samples."""
    feats = read_tsv(features, dtype=IDS)
    base = {"marker": marker, "model": settings["model"]}
    kwargs = {"sphere": sphere_params(settings), "stats": DENSE_STATS,
              "model": settings["model"], "folds": int(settings["folds"]),
              "inner_folds": int(settings["inner_folds"])}  # fmt: skip
    disc = feats[feats.get("role", pd.Series(dtype=str)) == "discovery"].reset_index(drop=True)
    try:
        if marker not in disc.columns:
            raise ValueError(f"no discovery sample has a {marker} column")
        metrics, preds, model = run_biopsy_model(
            disc, marker, n_boot=int(settings["bootstrap_n"]), seed=seed, **kwargs
        )
    except ValueError as exc:
        # Too few subjects per class, no samples at all: a status, not a crash.
        log.warning("biopsy model %s not run: %s", marker, exc)
        row = {**base, "set": "discovery_cv", "status": "not_run", "message": str(exc)}
        write_tsv(pd.DataFrame([row], columns=METRIC_COLUMNS), out["metrics"])
        write_tsv(pd.DataFrame(columns=[*IDS, "set", "y", "prob"]), out["predictions"])
        write_tsv(pd.DataFrame(columns=["feature", "coefficient"]), out["coefficients"])
        with atomic_path(out["model"]) as tmp:
            joblib.dump({"status": "not_run", "message": str(exc), "model": None}, tmp)
        message_figure(out["roc"], f"biopsy {marker}: {exc}")
        return
    known = disc[sample_targets(disc, marker)[1]].reset_index(drop=True)
    control = permutation_p(known, marker, metrics["auc"], int(settings["n_permutations"]), seed,
                            **kwargs)  # fmt: skip
    trained_on = ",".join(sorted(set(disc["cohort"])))
    rows = [{**base, **metrics, "set": "discovery_cv", "cohort": trained_on, "status": "ok",
             "message": "", **control}]  # fmt: skip
    preds = preds.assign(set="discovery_cv")
    val_preds = []
    for cohort, sub in feats[feats["role"] == "validation"].groupby("cohort", sort=True):
        y, ok = sample_targets(sub, marker) if marker in sub.columns else (np.zeros(0), None)
        if ok is None or len(np.unique(y)) < 2:
            rows.append({**base, "set": "validation", "cohort": cohort, "status": "too_few",
                         "message": "validation samples lack one class"})  # fmt: skip
            continue
        s = sub[ok].reset_index(drop=True)
        prob = model.predict_proba(s)
        groups = (s["cohort"] + "/" + s["subject"]).to_numpy()
        m = biopsy_metrics(y, prob, groups, int(settings["bootstrap_n"]), seed)
        rows.append({**base, **m, "set": "validation", "cohort": cohort, "status": "ok",
                     "message": "", "n_features": len(model.features)})  # fmt: skip
        val_preds.append(s[list(IDS)].assign(set=f"validation:{cohort}", fold=-1, y=y, prob=prob))
    write_tsv(pd.DataFrame(rows, columns=METRIC_COLUMNS), out["metrics"])
    preds = pd.concat([preds, *val_preds], ignore_index=True)
    write_tsv(preds, out["predictions"])
    write_tsv(model.coefficients(), out["coefficients"])
    with atomic_path(out["model"]) as tmp:
        joblib.dump({"status": "ok", "model": model, "marker": marker}, tmp)
    _roc_figure(out["roc"], preds, f"biopsy samples: {marker}")


def _overlay(path: Path, prob: np.ndarray, ref: np.ndarray, title: str) -> None:
    """Axial slice through the map's centre of mass: reference image and probability."""
    from scipy import ndimage

    k = int(round(ndimage.center_of_mass(prob > 0)[2])) if (prob > 0).any() else ref.shape[2] // 2
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(ref[:, :, k].T, origin="lower", cmap="gray")
    shown = np.ma.masked_where(prob[:, :, k] <= 0, prob[:, :, k])
    im = ax.imshow(shown.T, origin="lower", cmap="magma", vmin=0, vmax=1, alpha=0.8)
    fig.colorbar(im, ax=ax, fraction=0.04, label="P(amplified)")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    save_figure(fig, path)


def run_biopsy_maps(
    model_path: str,
    sessions: list[Mapping[str, str]],
    marker: str,
    settings: Mapping[str, Any],
    out_dir: str,
    out_table: str,
    overlays: str,
    n_overlays: int = 4,
    root: str | Path = "results",
) -> None:
    """Rule biopsy_maps: a probability map per session (`{cohort}/sub-X_ses-Y.nii.gz`); a
    session that cannot be mapped is a row with its reason, the others go on."""
    out, ov = Path(out_dir), Path(overlays)
    out.mkdir(parents=True, exist_ok=True)
    ov.mkdir(parents=True, exist_ok=True)
    payload = joblib.load(model_path)
    rows = []
    for s in sessions:
        rec = {k: s[k] for k in ("cohort", "subject", "session")}
        if payload.get("model") is None:
            rows.append({**rec, "status": "no_model", "message": payload.get("message", "")})
            continue
        sd = subject_dir(s["cohort"], s["subject"], s["session"], root)
        path = out / s["cohort"] / f"sub-{s['subject']}_ses-{s['session']}.nii.gz"
        try:
            if (sd / "qc" / "failure.json").is_file():
                raise SubjectError("an earlier step failed", stage="biopsy_maps",
                                   file=sd / "qc" / "failure.json")  # fmt: skip
            summary = write_probability_map(payload["model"], sd, path, int(settings["stride"]))
            rows.append({**rec, "status": "ok", "message": "", "map": str(path), **summary})
        except (SubjectError, ValueError, FileNotFoundError) as exc:
            log.warning("%s/%s/%s: %s", *rec.values(), exc)
            rows.append({**rec, "status": "failed", "message": str(exc)})
    table = pd.DataFrame(rows)
    write_tsv(table, out_table)
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    # Overlays of the sessions with the highest and lowest mean probability.
    if len(ok):
        ranked = ok.sort_values("mean_probability", ascending=False, kind="stable")
        picks = pd.concat([ranked.head((n_overlays + 1) // 2), ranked.tail(n_overlays // 2)])
        for rec in picks.drop_duplicates(["cohort", "subject", "session"]).to_dict("records"):
            sd = subject_dir(rec["cohort"], rec["subject"], rec["session"], root)
            ref = np.asarray(nib.load(str(sd / "prep" / "t1ce.nii.gz")).dataobj, np.float32)
            prob = np.asarray(nib.load(rec["map"]).dataobj, np.float32)
            name = f"{rec['cohort']}_{rec['subject']}_{rec['session']}"
            _overlay(ov / f"{name}.png", prob, ref,
                     f"{marker}: {name}, mean P {rec['mean_probability']:.2f}")  # fmt: skip
