"""How much computed rCBV's agreement with the planted map depends on motion correction's draw.

ANTs samples the images it registers (`MotionSettings.sampling_rate`), seeded per session by the
workflow; this recomputes the DSC maps of finished demo sessions with their own seed and with
other seeds, and scores each against the planted rCBV (radiogenomics.demo.score), on one thread.

    .venv/bin/python benchmarks/dsc_registration_seeds.py RUN_DIR demo_b/B019/01 [...] [--seeds 4]

RUN_DIR holds `results/` and `resources/demo/truth/` of a demo run with raw DSC sessions.
"""

from __future__ import annotations

import os

for _var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from radiogenomics.demo.score import acquisition_truth, score_computed_map  # noqa: E402
from radiogenomics.paths import subject_dir  # noqa: E402
from radiogenomics.physiology.session import dsc_session  # noqa: E402

EXTRA_SEEDS = (11, 22, 33, 44, 55, 66, 77, 88)


def session_rows(run: Path, key: str, n_extra: int) -> list[dict]:
    """Scores of one session's rCBV under its workflow seed and `n_extra` other seeds."""
    ids = key.split("/")
    sd = subject_dir(*ids, root=run / "results")
    truth = acquisition_truth(subject_dir(*ids, root=run / "resources/demo/truth"), "rcbv", "dsc")
    acq = json.loads((sd / "anat" / "manifest.json").read_text())["acquisitions"]["dsc"]
    files = [sd / "anat" / f for f in acq["files"]]
    workflow_seed = json.loads((sd / "maps" / "cbv.json").read_text())["motion"]["seed"]
    rows = []
    for seed in (workflow_seed, *EXTRA_SEEDS[:n_extra]):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.process_time()
            dsc_session(files, sd / "anat" / acq["sidecar"], tmp, seed=seed)
            cpu = time.process_time() - start
            # r does not depend on the map's scale: CBV scores as rCBV does.
            cbv = np.asarray(nib.load(Path(tmp) / "cbv.nii.gz").dataobj, np.float64)
        score = score_computed_map(cbv, truth, "rcbv")
        rows.append(
            {"session": key, "seed": seed, "workflow_seed": seed == workflow_seed, "cpu_s": cpu}
            | {k: score[k] for k in ("r_brain", "lesion_median_error")}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("sessions", nargs="+", help="cohort/subject/session")
    parser.add_argument("--seeds", type=int, default=4, help="other seeds per session")
    args = parser.parse_args()
    rows = [row for key in args.sessions for row in session_rows(args.run, key, args.seeds)]
    table = pd.DataFrame(rows)
    print(table.round(4).to_string(index=False))
    summary = table.groupby("session")["r_brain"].agg(["min", "mean", "max"])
    print("\nrCBV r vs planted over registration seeds:\n" + summary.round(4).to_string())


if __name__ == "__main__":
    main()
