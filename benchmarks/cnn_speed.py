"""cnn strategy speed/memory benchmark (cohort stage): one marker's repeated nested CV with the 3-D
CNN, as `cohort.models.nested_cv` runs it (outer folds in joblib workers), plus the final refit.

    nice -n 10 .venv/bin/python benchmarks/cnn_speed.py [--repeats 2] [--threads 2]
    .venv/bin/python benchmarks/cnn_speed.py --crops crops.npz --labels labels.tsv \
        --marker idh --cohort demo_a --validation-cohort demo_b

Without `--crops` the data are synthetic crops shaped like the default demo's discovery cohort
(45 sessions, 4 channels, the default crop size) with a planted signal. With `--crops` (a
`deep.crops.save_crop_set` file) and a labels table (cohort, subject, marker columns; first
session used), the real crops. Targets (issue 24): IDH cnn nested CV on the default demo
<= 4 min wall on 2 cores, peak RSS (this process and its workers together) <= 3 GB.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import pandas as pd
import psutil
from joblib.externals.loky import get_reusable_executor
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from radiogenomics.cohort.models import nested_cv
from radiogenomics.deep.crops import CropArray, CropSettings, load_crop_set
from radiogenomics.deep.synthetic import planted_crops
from radiogenomics.deep.train import CNNClassifier
from radiogenomics.labels import marker_binary


class TreeRSS:
    """Samples the summed RSS of this process and its descendants (joblib workers) every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and its live descendants."""
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def real_data(args) -> tuple[CropArray, np.ndarray, CropArray | None, np.ndarray | None]:
    """Crops of the labelled first sessions of the discovery (and validation) cohort."""
    cs = load_crop_set(args.crops)
    labels = pd.read_csv(args.labels, sep="\t", dtype={"subject": str, "cohort": str})

    def rows(cohort: str):
        lab = labels[labels["cohort"] == cohort].copy()
        lab["y"] = marker_binary(lab[args.marker], args.marker)
        lab = lab[lab["y"].notna()]
        ids = cs.ids[cs.ids["cohort"] == cohort].sort_values(["subject", "session"])
        ids = ids.drop_duplicates("subject").merge(lab[["subject", "y"]], on="subject")
        X, _ = cs.take(ids)
        return X, ids["y"].to_numpy().astype(int)

    Xa, ya = rows(args.cohort)
    Xb, yb = rows(args.validation_cohort) if args.validation_cohort else (None, None)
    return Xa, ya, Xb, yb


def main() -> None:
    """Time the nested CV (and the refit) and print wall, CPU, peak RSS and AUC."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--outer-folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=CNNClassifier().epochs)
    ap.add_argument("--n", type=int, default=45)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--size", type=int, default=CropSettings().size)
    ap.add_argument("--seed", type=int, default=20241125)
    ap.add_argument("--crops")
    ap.add_argument("--labels")
    ap.add_argument("--marker", default="idh")
    ap.add_argument("--cohort", default="demo_a")
    ap.add_argument("--validation-cohort")
    ap.add_argument("--twice", action="store_true", help="run the nested CV twice, compare bytes")
    ap.add_argument("--save-oof", help="write the out-of-fold probabilities (.npy) here")
    args = ap.parse_args()
    if args.crops:
        X, y, Xv, yv = real_data(args)
        source = f"{args.crops} ({args.cohort}, {args.marker})"
    else:
        raw, y = planted_crops(args.n, args.channels, args.size, effect=0.6, seed=args.seed)
        X, Xv, yv = CropArray(raw), None, None
        source = "synthetic planted crops"
    print(f"data: {source}: X {X.shape}, {int(y.sum())} positive / {int((1 - y).sum())} negative")
    pipe = Pipeline([("model", CNNClassifier(epochs=args.epochs, seed=args.seed))])
    runs = []
    with TreeRSS() as rss:
        t0 = time.perf_counter()
        for _ in range(2 if args.twice else 1):
            t = time.perf_counter()
            res = nested_cv(pipe, {}, X, y, outer_folds=args.outer_folds, repeats=args.repeats,
                            seed=args.seed, n_jobs=args.threads)  # fmt: skip
            runs.append(res)
            print(f"nested CV ({args.outer_folds} folds x {args.repeats} repeats): "
                  f"{time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
        cpu_cv = cpu_seconds()
        get_reusable_executor().shutdown(wait=True)
        t, c = time.perf_counter(), time.process_time()
        final = Pipeline([("model", CNNClassifier(epochs=args.epochs, seed=args.seed))]).fit(X, y)
        refit, cpu_refit = time.perf_counter() - t, time.process_time() - c
        wall = time.perf_counter() - t0
    est = final.named_steps["model"]
    res = runs[0]
    print(f"out-of-fold AUC (mean prob over repeats): {roc_auc_score(y, res.mean_prob):.3f}; "
          f"per repeat: {np.round(res.repeat_aucs(y), 3).tolist()}")  # fmt: skip
    if Xv is not None:
        pv = final.predict_proba(Xv)[:, 1]
        print(f"{args.validation_cohort}: AUC {roc_auc_score(yv, pv):.3f} (n={len(yv)})")
    if args.save_oof:
        np.save(args.save_oof, res.oof)
    if args.twice:
        print(f"two runs byte-identical: {runs[0].oof.tobytes() == runs[1].oof.tobytes()}")
    print(f"refit on all rows: {refit:.1f} s (best epoch {est.best_epoch_} of {est.epochs})")
    print(
        f"wall time: {wall:.1f} s; CPU time: {cpu_cv + cpu_refit:.1f} s (CV {cpu_cv:.1f} s); "
        f"peak RSS (process tree): {rss.peak / 2**20:.0f} MB; threads: {args.threads}"
    )


if __name__ == "__main__":
    main()
