"""Score a demo run against the generator's truth: Dice, co-registration error, habitats, mismatch.

Usage: .venv/bin/python benchmarks/score_demo.py [RUN_DIR]   (default: the project directory)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from radiogenomics.demo.score import (
    biopsy_map_correlations,
    computed_map_agreement,
    habitat_correlations,
    habitat_fraction_table,
    score_run,
)
from radiogenomics.features.mismatch import planted_performance


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    results, truth = run / "results", run / "resources" / "demo" / "truth"
    scores = score_run(results, truth)
    pd.set_option("display.width", 200)
    print(scores.round(3).to_string(index=False))
    ok = scores[scores["status"] == "ok"]
    means = ok.drop(columns=["cohort", "subject", "session", "status"]).mean()
    print("\nmean:", means.round(3).to_dict())
    habitats = habitat_fraction_table(results, truth)
    print("habitat fraction r vs truth:", habitat_correlations(habitats))
    # Split by planted enhancement: the non-enhancing core depends on the segmentation most.
    planted = pd.read_csv(truth / "planted.tsv", sep="\t", dtype={"subject": str, "session": str})
    if habitats.empty:
        habitats = pd.DataFrame(columns=["cohort", "subject", "session"])
    habitats = habitats.merge(planted[["cohort", "subject", "session", "enhancing"]])
    for enhancing, part in habitats.groupby(habitats["enhancing"].astype(str)):
        print(f"  enhancing={enhancing} (n={len(part)}):", habitat_correlations(part))
    try:
        tables = [
            p for p in results.glob("*/sub-*/ses-*/features/mismatch.tsv") if p.stat().st_size
        ]
        print("mismatch sign vs planted:", planted_performance(tables, truth / "planted.tsv"))
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print("mismatch sign: not scored:", exc)
    computed = computed_map_agreement(results, truth)
    if len(computed):
        print("\nmaps computed from raw acquisitions vs planted (acquisition grid):")
        print(computed.round(3).to_string(index=False))
    maps = biopsy_map_correlations(results, truth, "egfr_amplification")
    if len(maps):
        print(
            f"biopsy probability map r vs planted EGFR field ({len(maps)} amplified sessions):",
            maps.groupby("cohort")["r"].median().round(3).to_dict(),
            "median all",
            round(float(maps["r"].median()), 3),
        )


if __name__ == "__main__":
    main()
