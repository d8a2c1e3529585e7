"""Cohort stage, rule cnn_crops: tumour-centred crops of every imaged session for one cnn
strategy of config/markers.yaml (radiogenomics.deep.crops does the arithmetic)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from radiogenomics.cohort.aggregate import ID_COLUMNS
from radiogenomics.cohort.marker_config import load_markers
from radiogenomics.deep.crops import CropSettings, build_crop_set, save_crop_set
from radiogenomics.io import write_tsv
from radiogenomics.paths import RESULTS


def run_cnn_crops(
    sessions: list[Mapping[str, str]],
    markers_file: str,
    marker: str,
    strategy: str,
    out_crops: str,
    out_failures: str,
    root: str | Path = RESULTS,
) -> None:
    """Rule cnn_crops: every session's crop for one cnn strategy, and the sessions that failed."""
    log = logging.getLogger(__name__)
    spec = load_markers(markers_file)[marker]["strategies"][strategy]
    settings = CropSettings.from_config(spec)
    # A feature-table-only run has no imaged session: an empty set, the strategy is not run.
    cs, failures = build_crop_set(pd.DataFrame(list(sessions), columns=ID_COLUMNS), settings, root)
    for rec in failures.to_dict("records"):
        log.warning("%s/%s/%s: %s", rec["cohort"], rec["subject"], rec["session"], rec["message"])
    log.info("%d crops %s, %d failures", len(cs), cs.array.shape[1:], len(failures))
    save_crop_set(cs, out_crops)
    write_tsv(failures, out_failures)
