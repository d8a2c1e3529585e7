"""Cohort-stage speed benchmark: every marker's nested CV (+ shuffled-label controls) on the real
UCSF-PDGM 501 x 100 radiomics table, as the markers rules would run them.

    nice -n 10 .venv/bin/python benchmarks/cohort_speed.py [--permutations 200] [--threads 2]
        [--markers idh,mgmt]

Prints wall time, CPU time and peak resident memory (this process and its workers), and the
headline AUC, role and verdict of each marker's strategies (the UCSF-PDGM example's acceptance:
MGMT shows no evidence and is not selected; IDH >= 0.90).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from radiogenomics.cohort.aggregate import aggregate
from radiogenomics.cohort.marker_config import load_markers
from radiogenomics.cohort.markers import (
    StrategyOutputs,
    marker_summary,
    run_strategy,
    strategies_of,
)
from radiogenomics.config import section_defaults
from radiogenomics.intake.discover import safe_id
from radiogenomics.labels import check_labels, load_labels

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tables" / "ucsf_pdgm"
SPEC = {
    "id_column": "ID",
    "columns": {"idh": "IDH", "codeletion_1p19q": "1p/19q", "mgmt": "MGMT status",
                "sex": "Sex", "age": "Age at MRI"},
    "values": {
        "idh": {"wildtype": "wildtype", r"IDH[12] .*|mutated.*": "mutant"},
        "codeletion_1p19q": {"intact": "intact", "(relative )?co-deletion": "codeleted"},
        "mgmt": {"positive": "methylated", "negative": "unmethylated", "indeterminate": None},
    },
}  # fmt: skip


def load_ucsf() -> tuple[pd.DataFrame, pd.DataFrame]:
    """All 501 patients as one discovery cohort, canonical labels."""
    entry = {"name": "ucsf", "path": str(DATA / "radiomic_features_T1gad_bias_wt_501.csv"),
             "role": "discovery", "site": "ucsf",
             "feature_table": {"id_column": "ID", "include": "^original_", "seq": "t1ce",
                               "roi": "whole_tumor"}}  # fmt: skip
    feats, _ = aggregate(pd.DataFrame(columns=["cohort", "subject", "session"]), [], [entry])
    labels = check_labels(load_labels(DATA / "UCSF-PDGM-metadata_v2.csv", SPEC))
    labels["subject"] = labels["subject"].map(safe_id)
    labels.insert(0, "cohort", "ucsf")
    return feats, labels


def peak_mb() -> float:
    """Peak RSS of this process and of its finished children (joblib workers), MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def main() -> None:
    """Run every marker of config/markers.yaml and print timings."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--markers", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markers-file", default=str(ROOT / "config" / "markers.yaml"))
    args = ap.parse_args()
    settings = section_defaults("cohort", {"n_permutations": args.permutations})
    settings["seed"] = 20241125
    feats, labels = load_ucsf()
    markers = load_markers(args.markers_file)
    if args.markers:
        markers = {m: markers[m] for m in args.markers.split(",")}
    t0, c0 = time.perf_counter(), time.process_time()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for marker in markers:
            paths = []
            for s in strategies_of(markers, marker):
                out = StrategyOutputs.in_dir(Path(tmp) / marker / s.name)
                t = time.perf_counter()
                run_strategy(feats, labels, s, settings, set(), out, n_jobs=args.threads)
                paths.append(out.cv_metrics)
                print(f"  {marker}/{s.name}: {time.perf_counter() - t:.1f} s", flush=True)
            t = time.perf_counter()
            summary = marker_summary(feats, labels, markers, marker, paths, settings, set(),
                                     n_jobs=args.threads)  # fmt: skip
            print(f"  {marker} control: {time.perf_counter() - t:.1f} s", flush=True)
            rows.append(summary)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    table = pd.concat(rows, ignore_index=True)
    cols = ["marker", "strategy", "role", "status", "n", "n_pos", "auc", "auc_ci_low",
            "auc_ci_high", "association_q_min", "shuffled_auc_mean", "permutation_p", "verdict",
            "selected"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wall time: {wall:.1f} s; CPU time: {cpu + kids.ru_utime + kids.ru_stime:.1f} s "
          f"(main {cpu:.1f} s); peak RSS: {peak_mb():.0f} MB; threads: {args.threads}; "
          f"permutations: {args.permutations}")  # fmt: skip


if __name__ == "__main__":
    main()
