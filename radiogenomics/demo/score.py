"""Demo cohort (all stages): score a pipeline run against the generator's truth.

Used by the end-to-end test and by `benchmarks/score_demo.py`: brain-mask and tumour Dice,
co-registration displacement against the planted motion, habitat fractions against the
planted ones, maps computed from raw acquisitions against the planted maps, and the virtual
biopsy's probability maps against the planted EGFR field.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from radiogenomics.demo.raw import sample_on_grid
from radiogenomics.demo.tumour import HYPERVASCULAR, HYPOVASCULAR
from radiogenomics.paths import entities_from_path, failure_marker, prep_paths, subject_dir

LPS = np.diag([-1.0, -1.0, 1.0])  # ANTs transforms points in LPS world coordinates


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def truth_on_grid(truth: nib.Nifti1Image, target: nib.Nifti1Image) -> np.ndarray:
    """Nearest-neighbour resampling of a truth label image onto the pipeline grid (world space)."""
    idx = np.indices(target.shape[:3]).reshape(3, -1)
    world = target.affine @ np.vstack([idx, np.ones(idx.shape[1])])
    vox = np.linalg.inv(truth.affine) @ world
    out = ndimage.map_coordinates(np.asarray(truth.dataobj), vox[:3], order=0, mode="constant")
    return out.reshape(target.shape[:3])


def segmentation_scores(sd: Path, truth_dir: Path) -> dict[str, float]:
    """Brain-mask and tumour-subregion Dice of one session."""
    mask = nib.load(prep_paths(sd)["brain_mask"])
    labels = np.asarray(nib.load(sd / "seg" / "tumor_labels.nii.gz").dataobj)
    brain_t = truth_on_grid(nib.load(truth_dir / "brain_mask.nii.gz"), mask)
    lab_t = truth_on_grid(nib.load(truth_dir / "tumor_labels.nii.gz"), mask)
    return {
        "brain_dice": dice(np.asarray(mask.dataobj) > 0, brain_t > 0),
        "whole_tumor_dice": dice(labels > 0, lab_t > 0),
        "tumor_core_dice": dice(np.isin(labels, (1, 3)), np.isin(lab_t, (1, 3))),
        "enhancing_dice": dice(labels == 3, lab_t == 3),
    }


def coregistration_errors(sd: Path, truth_dir: Path, reference: str = "t1ce") -> dict[str, float]:
    """Mean displacement (mm) of our rigid transforms vs the planted motion, over the brain."""
    import ants

    brain = nib.load(truth_dir / "brain_mask.nii.gz")
    pts = np.argwhere(np.asarray(brain.dataobj) > 0)[::50]
    world = (brain.affine @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
    lps = world @ LPS.T
    frame = pd.DataFrame({"x": lps[:, 0], "y": lps[:, 1], "z": lps[:, 2]})
    planted = json.loads((truth_dir / "transforms.json").read_text())["sequences"]
    errors = {}
    for seq, spec in planted.items():
        xfm = sd / "prep" / "xfm" / f"{seq}_to_{reference}.mat"
        if seq == reference or not xfm.exists():
            continue
        est = (
            ants.apply_transforms_to_points(3, frame, [str(xfm)])[["x", "y", "z"]].to_numpy()
            @ LPS.T
        )
        true = (np.array(spec["matrix"]) @ np.c_[world, np.ones(len(world))].T).T[:, :3]
        errors[seq] = float(np.linalg.norm(est - true, axis=1).mean())
    return errors


HABITAT_NAMES = ("hypervascular_cellular", "hypovascular_cellular", "nonviable")


def habitat_fraction_table(results: Path, truth_root: Path) -> pd.DataFrame:
    """Measured and planted habitat fractions side by side, one row per session.

    The truth fractions are of the true core (labels 1+3), i.e. like with like when the habitats
    ROI is `tumor_core` (the default); `roi` records the ROI the run counted habitats in.
    """
    rows = []
    for truth_file in sorted(truth_root.glob("*/sub-*/ses-*/habitat_fractions.tsv")):
        t = pd.read_csv(truth_file, sep="\t", dtype={"subject": str, "session": str}).iloc[0]
        sd = subject_dir(t["cohort"], t["subject"], t["session"], root=results)
        ours_file = sd / "habitats" / "habitat_fractions.tsv"
        if not ours_file.exists() or ours_file.stat().st_size == 0:
            continue
        ours = pd.read_csv(ours_file, sep="\t").iloc[0]
        row = {"cohort": t["cohort"], "subject": t["subject"], "session": t["session"]}
        row["roi"] = ours.get("prov__habitat_roi", "")
        for name in HABITAT_NAMES:
            row[f"truth_{name}"] = t[f"frac_{name}"]
            row[f"ours_{name}"] = ours.get(f"habitat__{name}__fraction", np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def habitat_correlations(table: pd.DataFrame) -> dict[str, float]:
    """Pearson r between measured and planted fraction, per habitat."""
    out = {}
    for name in HABITAT_NAMES:
        if f"ours_{name}" not in table:
            out[name] = np.nan  # no session has habitat fractions yet
            continue
        pair = table[[f"truth_{name}", f"ours_{name}"]].dropna()
        out[name] = (
            float(np.corrcoef(pair.iloc[:, 0], pair.iloc[:, 1])[0, 1]) if len(pair) > 2 else np.nan
        )
    return out


def score_run(results: Path, truth_root: Path) -> pd.DataFrame:
    """Segmentation and co-registration scores of every session that has truth."""
    rows = []
    for truth_dir in sorted(truth_root.glob("*/sub-*/ses-*")):
        cohort, subject, session = entities_from_path(truth_dir / "x")
        sd = subject_dir(cohort, subject, session, root=results)
        ids = {"cohort": cohort, "subject": subject, "session": session}
        if failure_marker(sd).exists() or not (sd / "seg" / "tumor_labels.nii.gz").exists():
            rows.append(ids | {"status": "missing"})
            continue
        row = ids | {"status": "ok"}
        row |= segmentation_scores(sd, truth_dir)
        errs = coregistration_errors(sd, truth_dir)
        row["coreg_mean_mm"] = float(np.mean(list(errs.values()))) if errs else np.nan
        row["coreg_max_mm"] = float(np.max(list(errs.values()))) if errs else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def biopsy_map_correlations(results: Path, truth_root: Path, marker: str) -> pd.DataFrame:
    """Probability map vs planted EGFR amplification field, one row per amplified session.

    Pearson r over the planted viable tumour (hypervascular and hypovascular habitats in the core:
    where the field lives), the map sampled trilinearly at the truth grid's voxel centres (the
    truth world is the reference sequence's world, i.e. the prep grid's).
    """
    table_path = results / "biopsy" / marker / "maps.tsv"
    rows = []
    if not table_path.is_file():
        return pd.DataFrame(columns=["cohort", "subject", "session", "r", "n_voxels"])
    maps = pd.read_csv(table_path, sep="\t", dtype={"subject": str, "session": str})
    for rec in maps[maps["status"] == "ok"].to_dict("records"):
        td = truth_root / rec["cohort"] / f"sub-{rec['subject']}" / f"ses-{rec['session']}"
        if not (td / "egfr_field.nii.gz").is_file():
            continue
        field_img = nib.load(td / "egfr_field.nii.gz")
        field = np.asarray(field_img.dataobj, np.float32)
        if field.max() < 0.5:  # not amplified: the field is 0 everywhere
            continue
        habitat = np.asarray(nib.load(td / "habitat_map.nii.gz").dataobj)
        labels = np.asarray(nib.load(td / "tumor_labels.nii.gz").dataobj)
        viable = np.isin(habitat, (HYPERVASCULAR, HYPOVASCULAR)) & np.isin(labels, (1, 3))
        map_path = Path(rec["map"])  # written relative to the workflow's working directory
        prob_img = nib.load(map_path if map_path.is_absolute() else results.parent / map_path)
        ijk = np.argwhere(viable)
        world = field_img.affine @ np.c_[ijk, np.ones(len(ijk))].T
        vox = np.linalg.inv(prob_img.affine) @ world
        prob = ndimage.map_coordinates(
            np.asarray(prob_img.dataobj, np.float32), vox[:3], order=1, mode="nearest"
        )
        r = np.corrcoef(prob, field[viable])[0, 1] if prob.std() > 0 else np.nan
        ids = {k: rec[k] for k in ("cohort", "subject", "session")}
        rows.append(ids | {"r": float(r), "n_voxels": int(viable.sum())})
    return pd.DataFrame(rows)


# Raw acquisition -> the planted map it was simulated from (truth/.../maps/acquisitions.json).
COMPUTED_MAP_SOURCES = {"rcbv": "dsc", "adc": "dwi"}
RELATIVE_TO_WM = ("rcbv",)  # planted as a ratio to normal white matter (= 1)


def _as_acquired(path: Path, truth_affine: np.ndarray, spec: dict, kind: str, labels: bool):
    """A truth-grid image as acquisition `kind` saw it (labels: nearest, no PSF)."""
    data = np.asarray(nib.load(path).dataobj, np.float32)
    grid = spec["grid"]
    return sample_on_grid(
        data, truth_affine, grid["shape"], np.asarray(grid["affine"]),
        np.asarray(spec[kind]["motion_matrix"]), order=0 if labels else 1, psf=not labels,
    )  # fmt: skip


def map_agreement(computed: np.ndarray, planted: np.ndarray, brain: np.ndarray, lesion: np.ndarray):
    """Pearson r in `brain` and the lesion median's relative error (computed / planted - 1)."""
    ok = brain & np.isfinite(computed)
    lesion = lesion & ok
    r = float(np.corrcoef(computed[ok], planted[ok])[0, 1])
    median_error = (
        float(np.median(computed[lesion]) / np.median(planted[lesion]) - 1.0)
        if lesion.any()
        else np.nan
    )
    return {"r_brain": r, "lesion_median_error": median_error, "n_brain": int(ok.sum()),
            "n_lesion": int(lesion.sum())}  # fmt: skip


def acquisition_truth(truth_dir: Path, name: str, kind: str) -> dict[str, np.ndarray]:
    """Planted map `name`, brain and lesion masks of one session as acquisition `kind` saw them
    (PSF, grid, planted pose; the convention in `acquisitions.json`), on its grid.

    The brain leaves out the simulated arteries (pure blood, which the planted maps do not hold),
    spread by a voxel as motion correction reslices them."""
    spec = json.loads((truth_dir / "maps" / "acquisitions.json").read_text())
    truth_affine = nib.load(truth_dir / "brain_mask.nii.gz").affine
    planted = _as_acquired(truth_dir / "maps" / f"{name}.nii.gz", truth_affine, spec, kind, False)
    brain = _as_acquired(truth_dir / "brain_mask.nii.gz", truth_affine, spec, kind, False) > 0.5
    lesion = _as_acquired(truth_dir / "tumor_labels.nii.gz", truth_affine, spec, kind, True) > 0
    artery_path = truth_dir / "maps" / f"{kind}_artery_mask.nii.gz"
    if artery_path.is_file():
        brain &= ~ndimage.binary_dilation(np.asarray(nib.load(artery_path).dataobj) > 0)
    return {"planted": planted, "brain": brain, "lesion": lesion}


def score_computed_map(computed: np.ndarray, truth: dict[str, np.ndarray], name: str) -> dict:
    """`map_agreement` of a computed map with `acquisition_truth`; maps planted relative to white
    matter (rCBV) are first scaled by their median in the planted pure WM, the planted reference.

    maps/rcbv is referenced to the head median (prep/ re-references it to the pipeline's NAWM):
    the planted maps' own reference keeps that choice out of the lesion median error."""
    planted, brain, lesion = truth["planted"], truth["brain"], truth["lesion"]
    computed = np.asarray(computed, np.float64)
    scale = 1.0
    if name in RELATIVE_TO_WM:
        wm = brain & ~lesion & (np.abs(planted - 1.0) < 0.05) & np.isfinite(computed)
        scale = float(np.median(computed[wm]))
    return {"wm_reference": scale} | map_agreement(computed / scale, planted, brain, lesion)


def computed_map_agreement(results: Path, truth_root: Path) -> pd.DataFrame:
    """Maps the workflow computed from raw demo acquisitions vs the planted maps, per session.

    Compared on the acquisition grid (`acquisition_truth`): voxelwise Pearson r inside the brain
    outside the simulated arteries, and the lesion-wide median's relative error (computed /
    planted - 1) in the tumour (`score_computed_map`).
    """
    rows = []
    for spec_path in sorted(truth_root.glob("*/sub-*/ses-*/maps/acquisitions.json")):
        td = spec_path.parent.parent
        cohort, subject, session = entities_from_path(td / "x")
        sd = subject_dir(cohort, subject, session, root=results)
        for name, kind in COMPUTED_MAP_SOURCES.items():
            ids = {"cohort": cohort, "subject": subject, "session": session, "map": name}
            computed_path = sd / "maps" / f"{name}.nii.gz"
            if not computed_path.is_file():
                rows.append(ids | {"status": "missing"})
                continue
            computed = np.asarray(nib.load(computed_path).dataobj, np.float32)
            agreement = score_computed_map(computed, acquisition_truth(td, name, kind), name)
            rows.append(ids | {"status": "ok"} | agreement)
    return pd.DataFrame(rows)
