"""Demo cohort generator (foundation stage): one subject's inputs and truth, and the cohort tables.

Layout (see `truth/README.md`, generated): `demo_a` as BIDS NIfTI, `demo_b` as TCIA-style DICOM,
truth apart under `truth/`, labels tables under `labels/`.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.demo import dicom_export, raw
from radiogenomics.demo.anatomy import HEAD_CENTRE_MNI, build_anatomy, truth_grid
from radiogenomics.demo.biopsy import (
    SAMPLE_COLUMNS,
    TRUTH_COLUMNS,
    BiopsyPlant,
    EgfrPlant,
    plant_egfr_biopsies,
)
from radiogenomics.demo.plan import COHORTS, LABEL_COLUMNS, labels_table, plan_demo, resolve_config
from radiogenomics.demo.sequences import (
    REFERENCE,
    SEQUENCES,
    SITES,
    TEXTURE_FAMILY,
    bias_field,
    motion,
    render_sequence,
    tumour_maps,
    tumour_texture,
)
from radiogenomics.demo.tumour import (
    HYPERVASCULAR,
    HYPOVASCULAR,
    Tumour,
    build_tumour,
    habitat_fractions,
)
from radiogenomics.io import atomic_path, write_json, write_tsv
from radiogenomics.paths import subject_seed

log = logging.getLogger("radiogenomics.demo")

BIDS_SUFFIX = {
    "t1": ("anat", "T1w"), "t1ce": ("anat", "ce-gadolinium_T1w"), "t2": ("anat", "T2w"),
    "flair": ("anat", "FLAIR"), "adc": ("dwi", "ADC"), "rcbv": ("perf", "rCBV"),
    "dsc": ("perf", "dsc"), "dwi": ("dwi", "dwi"),
}  # fmt: skip
# Ready-made maps a raw-acquisition session ships as raw series instead (map -> acquisition).
RAW_INSTEAD = {"rcbv": "dsc", "adc": "dwi"}
SCANNERS = {
    "demo_a": {"manufacturer": "SIEMENS", "model": "Prisma", "field": 3.0},
    "demo_b": {"manufacturer": "GE MEDICAL SYSTEMS", "model": "Signa HDxt", "field": 1.5},
}


def bids_path(root: Path, subject: str, session: str, seq: str) -> Path:
    """BIDS path of one demo_a sequence."""
    folder, suffix = BIDS_SUFFIX[seq]
    return (
        Path(root)
        / "demo_a"
        / f"sub-{subject}"
        / f"ses-{session}"
        / folder
        / f"sub-{subject}_ses-{session}_{suffix}.nii.gz"
    )


def dicom_dir(root: Path, subject: str, session: str, seq: str) -> Path:
    """TCIA-style folder of one demo_b series."""
    return Path(root) / "demo_b" / subject / session / dicom_export.series_dirname(seq)


def truth_dir(root: Path, cohort: str, subject: str, session: str) -> Path:
    """Truth folder of one subject/session."""
    return Path(root) / "truth" / cohort / f"sub-{subject}" / f"ses-{session}"


def done_flag(root: Path, cohort: str, subject: str) -> Path:
    """Flag written when all of a subject's sessions are complete."""
    return Path(root) / ".done" / cohort / f"{subject}.done"


def nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """NIfTI with qform and sform both set to the (RAS) affine."""
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


# Storage types of the BIDS NIfTI inputs: integers like a scanner writes, rCBV with a scale factor.
STORAGE = {"t1": 1.0, "t1ce": 1.0, "t2": 1.0, "flair": 1.0, "adc": 1.0, "rcbv": 0.001}


def save_nifti_fast(img: nib.Nifti1Image, path: Path) -> None:
    """Atomic NIfTI write, fast gzip (level 1) with a fixed mtime so reruns are byte-identical."""
    with atomic_path(path) as tmp:
        with (
            open(tmp, "wb") as fh,
            gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0, compresslevel=1) as gz,
        ):
            gz.write(img.to_bytes())


def scanner_nifti(data: np.ndarray, affine: np.ndarray, seq: str) -> nib.Nifti1Image:
    """int16 NIfTI of one sequence (scl_slope for rCBV) as a scanner export would store it."""
    slope = STORAGE[seq]
    q = np.clip(np.round(data / slope), -32768, 32767).astype(np.int16)
    img = nifti(q, affine)
    img.header.set_slope_inter(slope, 0.0)
    return img


def study_date(subject: str, session: str, seed: int) -> str:
    """Deterministic fake study date; session 02 comes ~4 months after session 01."""
    day = pd.Timestamp("2019-01-07") + pd.Timedelta(
        days=int(subject_seed(seed, "date", subject) % 900)
    )
    if session == "02":
        day += pd.Timedelta(days=120)
    return day.strftime("%Y%m%d")


def _write_inputs(
    cohort: str, subject: str, session: str, images: dict, affine: np.ndarray, root: Path, seed: int
) -> None:
    """Write the pipeline inputs of one session in the cohort's layout."""
    if cohort == "demo_a":
        for seq, data in images.items():
            save_nifti_fast(
                scanner_nifti(data, affine, seq), bids_path(root, subject, session, seq)
            )
        return
    uid_seed = f"{seed}/{cohort}/{subject}/{session}"
    study_uid = dicom_export.generate_uid(entropy_srcs=[uid_seed, "study"])
    frame_uid = dicom_export.generate_uid(entropy_srcs=[uid_seed, "frame"])
    for seq, data in images.items():
        out = dicom_dir(root, subject, session, seq)
        dicom_export.write_series(
            data,
            affine,
            seq,
            out,
            subject=subject,
            session=session,
            study_uid=study_uid,
            frame_uid=frame_uid,
            uid_seed=uid_seed,
            study_date=study_date(subject, session, seed),
            scanner=SCANNERS[cohort],
        )


def egfr_plant_settings(cfg: dict) -> EgfrPlant:
    """The demo config's EGFR field and biopsy settings as an EgfrPlant."""
    f, b = cfg["egfr_field"], cfg["biopsies"]
    return EgfrPlant(
        fraction_low=float(f["fraction_low"]),
        fraction_high=float(f["fraction_high"]),
        smooth_mm=float(f["smooth_mm"]),
        rcbv_log_gain=float(f["rcbv_log_gain"]),
        adc_log_gain=float(f["adc_log_gain"]),
        n_min=int(b["n_min"]),
        n_max=int(b["n_max"]),
        min_distance_mm=float(b["min_distance_mm"]),
    )


def plant_egfr(row: dict, tum: Tumour, maps: dict, affine, seed: int, cfg: dict) -> BiopsyPlant:
    """EGFR amplification field (amplified subjects) and biopsies (session 01, IDH-wildtype).

    The field lives in the viable tumour (hypervascular and hypovascular cellular habitats):
    necrotic and nonviable tissue has no tumour cells to carry an amplification, and a surgeon
    samples viable tumour. Its own generator, so every other image draw stays as it was.
    """
    cohort, subject, session = row["cohort"], row["subject"], row["session"]
    rng = np.random.default_rng(subject_seed(seed, "demo-egfr", cohort, subject, session))
    viable = np.isin(tum.habitat, (HYPERVASCULAR, HYPOVASCULAR)) & np.isin(tum.labels, (1, 3))
    plant = plant_egfr_biopsies(
        tum.labels,
        maps,
        affine,
        rng,
        row.get("egfr_amplification") == "amplified",
        subject,
        session,
        plant=egfr_plant_settings(cfg),
        region=viable,
    )
    sampled = cfg["biopsies"]["enabled"] and session == "01" and row.get("idh") == "wildtype"
    if not sampled:
        plant.samples = plant.samples.iloc[0:0]
    return plant


def simulate_session(
    row: dict, anat, seed: int, sequences: tuple[str, ...] = SEQUENCES, moved: bool = True
) -> tuple[dict, Tumour, dict]:
    """Render one session in memory: images per sequence, the tumour truth and the transforms.

    `moved=False` renders every sequence unmoved on the truth grid (same noise), for checks.
    """
    images, tum, transforms, _ = simulate_session_planted(row, anat, seed, sequences, moved)
    return images, tum, transforms


def simulate_session_planted(
    row: dict,
    anat,
    seed: int,
    sequences: tuple[str, ...] = SEQUENCES,
    moved: bool = True,
    demo_cfg: dict | None = None,
) -> tuple[dict, Tumour, dict, BiopsyPlant]:
    """`simulate_session` plus the EGFR amplification plant (field, biopsies) it rendered."""
    cohort, subject, session = row["cohort"], row["subject"], row["session"]
    rng = np.random.default_rng(subject_seed(seed, "demo-images", cohort, subject, session))
    tum = build_tumour(row, anat, rng)
    maps = tumour_maps(row, tum, rng)
    plant = plant_egfr(row, tum, maps, anat.affine, seed, resolve_config(demo_cfg))
    maps = plant.maps
    head_centre = (anat.mni_to_subject @ np.append(HEAD_CENTRE_MNI, 1.0))[:3]
    transforms: dict = {"reference": REFERENCE, "sequences": {}}
    images = {}
    textures = {
        family: tumour_texture(
            row,
            tum,
            np.random.default_rng(
                subject_seed(seed, "demo-texture", cohort, subject, session, family)
            ),
        )
        for family in sorted(set(TEXTURE_FAMILY.values()))
    }
    # One receive-coil field for the T1 pair (same session, same coil, same acquisition).
    t1_bias = bias_field(
        anat.shape,
        np.random.default_rng(subject_seed(seed, "demo-bias", cohort, subject, session, "t1")),
        SITES[cohort]["bias"],
    )
    for seq in SEQUENCES:
        # Every sequence draws its motion and noise even when not requested, so a subset
        # renders exactly the same images as the full session.
        mov = motion(rng, head_centre) if seq != REFERENCE else None
        if mov is None:
            eye = np.eye(4).tolist()
            mov = {"rotation_deg_xyz": [0.0] * 3, "translation_mm": [0.0] * 3,
                   "centre_mm": head_centre.tolist(), "matrix": eye, "inverse": eye}  # fmt: skip
        transforms["sequences"][seq] = mov
        seq_rng = np.random.default_rng(
            subject_seed(seed, "demo-noise", cohort, subject, session, seq)
        )
        if seq in sequences:
            xfm = np.array(mov["matrix"]) if moved else np.eye(4)
            tex = textures.get(TEXTURE_FAMILY.get(seq, ""))
            bias = t1_bias if TEXTURE_FAMILY.get(seq) == "t1" else None
            images[seq] = render_sequence(
                seq, row, cohort, anat, tum, maps, xfm, seq_rng, tex, bias
            )
    transforms["tumour_centre_mm"] = tum.centre_world.tolist()
    return images, tum, transforms, plant


def is_raw(row: dict) -> bool:
    """Whether a planned session ships raw DSC/DWI series instead of rCBV/ADC maps."""
    return bool(row.get("raw_acquisitions", False)) and str(row["raw_acquisitions"]) != "False"


def _write_raw(
    cohort: str, subject: str, session: str, acquisitions: dict, root: Path, seed: int
) -> None:
    """Write the raw DSC/DWI series of one session in the cohort's layout (BIDS or DICOM)."""
    if cohort == "demo_a":
        for kind, acq in acquisitions.items():
            path = bids_path(root, subject, session, kind)
            stem = path.name[: -len(".nii.gz")]
            img = nifti(np.clip(np.round(acq["series"]), 0, 32767).astype(np.int16), acq["affine"])
            # BIDS: pixdim[4] is the volume spacing of a time series.
            if kind == "dsc":
                img.header.set_zooms(
                    (*img.header.get_zooms()[:3], acq["sidecar"]["RepetitionTime"])
                )
            save_nifti_fast(img, path)
            write_json(acq["sidecar"], path.with_name(stem + ".json"))
            if kind == "dwi":
                with atomic_path(path.with_name(stem + ".bval")) as tmp:
                    tmp.write_text(" ".join(f"{b:g}" for b in acq["bvals"]) + "\n")
                with atomic_path(path.with_name(stem + ".bvec")) as tmp:
                    tmp.write_text(
                        "".join(" ".join(f"{v:g}" for v in row) + "\n" for row in acq["bvecs"].T)
                    )
        return
    uid_seed = f"{seed}/{cohort}/{subject}/{session}"
    for kind, acq in acquisitions.items():
        dicom_export.write_series_4d(
            acq["series"],
            acq["affine"],
            kind,
            dicom_dir(root, subject, session, kind),
            repetition_time_ms=1000.0 * acq["sidecar"]["RepetitionTime"],
            echo_time_ms=1000.0 * acq["sidecar"]["EchoTime"],
            bvals=acq.get("bvals"),
            bvecs=acq.get("bvecs"),
            subject=subject,
            session=session,
            study_uid=dicom_export.generate_uid(entropy_srcs=[uid_seed, "study"]),
            frame_uid=dicom_export.generate_uid(entropy_srcs=[uid_seed, "frame"]),
            uid_seed=uid_seed,
            study_date=study_date(subject, session, seed),
            scanner=SCANNERS[cohort],
        )


def generate_session(row: dict, anat, cfg: dict, seed: int, root: Path) -> dict:
    """Render, write inputs and truth of one session; returns its realised habitat fractions."""
    cohort, subject, session = row["cohort"], row["subject"], row["session"]
    raw_session = is_raw(row)
    wanted = tuple(s for s in SEQUENCES if not (raw_session and s in RAW_INSTEAD))
    images, tum, transforms, plant = simulate_session_planted(row, anat, seed, wanted, demo_cfg=cfg)
    maps = plant.maps
    _write_inputs(cohort, subject, session, images, anat.affine, root, seed)

    td = truth_dir(root, cohort, subject, session)
    if raw_session:
        # The planted maps the computed ones are scored against (raw sessions only).
        planted = raw.planted_maps(row, anat, tum, maps)
        for name in ("rcbv", "adc", "k2"):
            save_nifti_fast(nifti(planted[name], anat.affine), td / "maps" / f"{name}.nii.gz")
        motion = {
            acq: np.array(transforms["sequences"][m]["matrix"]) for m, acq in RAW_INSTEAD.items()
        }
        acqs = raw.render_raw(
            row, cohort, anat, planted, motion,
            subject_seed(seed, "demo-raw", cohort, subject, session),
        )  # fmt: skip
        _write_raw(cohort, subject, session, acqs, root, seed)
        shape, affine = raw.acquisition_grid(anat)
        # Voxels simulated as pure arterial blood: the planted maps hold no vessels.
        save_nifti_fast(
            nifti(acqs["dsc"]["artery_mask"].astype(np.uint8), affine),
            td / "maps" / "dsc_artery_mask.nii.gz",
        )
        write_json(
            {
                "grid": {"shape": list(shape), "affine": affine.tolist()},
                **{
                    kind: {
                        "motion_matrix": motion[kind].tolist(),
                        "sidecar": a["sidecar"],
                        "protocol": a["protocol"],
                        "artery_voxels": a.get("artery_voxels"),
                    }
                    for kind, a in acqs.items()
                },  # fmt: skip
                "convention": "planted maps (maps/*.nii.gz, truth grid) as each acquisition "
                "sees them: radiogenomics.demo.raw.sample_on_grid(map, truth affine, grid shape, "
                "grid affine, motion_matrix); dsc_artery_mask.nii.gz (acquisition grid): the "
                "voxels simulated as pure arterial blood",
            },
            td / "maps" / "acquisitions.json",
        )
    save_nifti_fast(nifti(tum.labels, anat.affine), td / "tumor_labels.nii.gz")
    save_nifti_fast(nifti(anat.brain_mask.astype(np.uint8), anat.affine), td / "brain_mask.nii.gz")
    save_nifti_fast(nifti(tum.habitat, anat.affine), td / "habitat_map.nii.gz")
    transforms["convention"] = (
        "RAS world mm. 'matrix' M maps a point p of the t1ce/truth world to where that "
        "tissue lies in the sequence: seq(M @ p) == truth(p). To realign, sample the sequence "
        "at M @ p for every truth voxel p; 'inverse' maps sequence world to truth world."
    )
    write_json(transforms, td / "transforms.json")
    save_nifti_fast(nifti(plant.field.astype(np.float32), anat.affine), td / "egfr_field.nii.gz")
    # Biopsy samples with their truth (field value at the point); the pipeline's table, without
    # the truth column, is assembled per cohort by write_demo_biopsies.
    write_tsv(plant.samples.assign(cohort=cohort), td / "biopsies.tsv")
    voxel_ml = float(abs(np.linalg.det(anat.affine[:3, :3]))) / 1000.0
    fr = {
        "cohort": cohort,
        "subject": subject,
        "session": session,
        **habitat_fractions(tum, voxel_ml),
    }
    write_tsv(pd.DataFrame([fr]), td / "habitat_fractions.tsv")
    return fr


def subject_anatomy(row: dict, demo_cfg: dict | None, seed: int):
    """The subject's head on the truth grid (shared by all of its sessions)."""
    cfg = resolve_config(demo_cfg)
    rng = np.random.default_rng(subject_seed(seed, "demo-anatomy", row["cohort"], row["subject"]))
    return build_anatomy(row, row["cohort"], float(cfg["resolution_mm"]), rng)


def generate_subject(
    demo_cfg: dict | None,
    seed: int,
    cohort: str,
    subject: str,
    out_root: Path = Path("resources/demo"),
) -> list[dict]:
    """Write all sessions (inputs + truth) of one demo subject, then its done flag."""
    cfg = resolve_config(demo_cfg)
    plan = plan_demo(cfg, seed)
    rows = plan[(plan["cohort"] == cohort) & (plan["subject"] == subject)]
    if rows.empty:
        raise ValueError(f"{cohort}/{subject} is not in the demo plan (size={cfg['size']})")
    out_root = Path(out_root)
    anat = subject_anatomy(rows.iloc[0].to_dict(), cfg, seed)
    results = []
    for _, r in rows.iterrows():
        log.info("generating %s/%s/ses-%s", cohort, subject, r["session"])
        results.append(generate_session(r.to_dict(), anat, cfg, seed, out_root))
    flag = done_flag(out_root, cohort, subject)
    with atomic_path(flag) as tmp:
        tmp.write_text("".join(f"{cohort}\t{subject}\t{r['session']}\n" for r in results))
    return results


def biopsy_table(root: Path, cohort: str, subjects: list[str], with_truth: bool = False):
    """A cohort's biopsy table from the sessions' truth files (`truth/.../biopsies.tsv`)."""
    marker = "egfr_amplification"
    frames = []
    for path in sorted((Path(root) / "truth" / cohort).glob("sub-*/ses-*/biopsies.tsv")):
        if path.parent.parent.name[4:] in set(subjects) and path.stat().st_size:
            frames.append(pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str}))
    cols = [*SAMPLE_COLUMNS, marker, *(TRUTH_COLUMNS if with_truth else ())]
    if not frames:
        return pd.DataFrame(columns=cols)
    df = pd.concat(frames, ignore_index=True)
    df["session"] = df["session"].str.zfill(2)
    df["sequence"] = df["sequence"].fillna("")
    return df[cols].sort_values(["subject", "session", "sample_id"]).reset_index(drop=True)


def write_demo_biopsies(root: Path, cohort: str, subjects: list[str], out: Path) -> int:
    """Write the pipeline's biopsy table of one demo cohort (no truth columns); returns rows."""
    table = biopsy_table(root, cohort, subjects)
    write_tsv(table, out)
    return len(table)


def planted_table(plan: pd.DataFrame) -> pd.DataFrame:
    """Every planted variable per subject/session (the plan, minus bookkeeping columns)."""
    out = plan.drop(columns=["label_missing"]).copy()
    out["labels_blank"] = plan["label_missing"]
    return out


def write_demo_tables(
    demo_cfg: dict | None, seed: int, out_root: Path = Path("resources/demo")
) -> dict:
    """Write labels tables, planted.tsv, phi_strings.txt and the truth README (no images needed)."""
    cfg = resolve_config(demo_cfg)
    plan = plan_demo(cfg, seed)
    root = Path(out_root)
    paths = {}
    for cohort in COHORTS:
        p = root / "labels" / f"{cohort}.tsv"
        write_tsv(labels_table(plan, cohort), p)
        paths[f"labels_{cohort}"] = p
    write_tsv(planted_table(plan), root / "truth" / "planted.tsv")
    b = plan[plan["cohort"] == "demo_b"]
    phi = dicom_export.phi_strings(list(zip(b["subject"], b["session"], strict=True)))
    with atomic_path(root / "truth" / "phi_strings.txt") as tmp:
        tmp.write_text("\n".join(phi) + "\n")
    with atomic_path(root / "truth" / "README.md") as tmp:
        tmp.write_text(readme_text(cfg, seed, plan))
    paths.update(
        planted=root / "truth" / "planted.tsv",
        phi=root / "truth" / "phi_strings.txt",
        readme=root / "truth" / "README.md",
    )
    return paths


def readme_text(cfg: dict, seed: int, plan: pd.DataFrame) -> str:
    """The generated description of every demo file."""
    shape, affine = truth_grid("demo_a", float(cfg["resolution_mm"]))
    counts = plan.groupby(["cohort", "session"]).size().to_dict()
    count_txt = ", ".join(f"{c} ses-{s}: {n}" for (c, s), n in sorted(counts.items()))
    return f"""# Demo cohort truth
Generated: seed {seed}, size {cfg["size"]}, {cfg["resolution_mm"]} mm. Sessions: {count_txt}.

Synthetic whole-head glioma MRI built from the MNI152 2009a template shipped with nilearn
(GM/WM maps warped per subject, CSF/skull/diploe/galea/fat/skin shells added).
Grid: {shape} voxels, RAS, spacing {cfg["resolution_mm"]} mm (demo_b origin shifted by its
scanner).

## Pipeline inputs (what the intake stage reads)
- `demo_a/` (discovery, site demo_a, 3T): BIDS,
  `sub-X/ses-Y/anat/*_{{T1w,ce-gadolinium_T1w,T2w,FLAIR}}.nii.gz`, `dwi/*_ADC.nii.gz`,
  `perf/*_rCBV.nii.gz`; int16 (rCBV with scl_slope 0.001).
- `demo_b/` (validation, site demo_b, 1.5T): TCIA-style DICOM only,
  `SUBJECT/SESSION/NN_slug/IM0001.dcm`, series `AX T1 PRE`, `AX T1 POST GAD`, `AX T2 FSE`,
  `AX T2 FLAIR`, `ADC MAP`, `rCBV MAP`; uint16 pixels with RescaleSlope/Intercept; dcm2niix
  rebuilds the truth grid exactly. Headers contain fake PHI. A session with
  `raw_acquisitions` in planted.tsv (by default every demo_b session; demo_a ones, by default
  half of the follow-ups, as BIDS `perf/*_dsc` and `dwi/*_dwi` with .bval/.bvec) ships
  `AX PERFUSION` (4-D DSC) and `AX DIFFUSION` (b 0/500/1000) instead of the maps; its planted
  maps, acquisition grid and simulated arteries (`dsc_artery_mask`) are in `truth/.../maps/`.
- `labels/{{cohort}}.tsv`: {", ".join(LABEL_COLUMNS)};
  blank = not tested (see `labels_blank` in planted.tsv); `progression` blank with one session.

## Truth (never an input)
- `truth/{{cohort}}/sub-X/ses-Y/`, all on the t1ce grid (= the written t1ce image grid, RAS):
  - `tumor_labels.nii.gz` uint8: 0 background, 1 necrosis / non-enhancing core, 2 oedema,
    3 enhancing.
  - `brain_mask.nii.gz` uint8: brain incl. ventricles (template brain warped to the subject).
  - `habitat_map.nii.gz` uint8 inside the core (labels 1+3): 0 none,
    1 hypervascular_cellular (high rCBV, low ADC), 2 hypovascular_cellular (low rCBV, low ADC),
    3 nonviable (low rCBV, high ADC; includes all necrosis).
  - `habitat_fractions.tsv`: realised habitat fractions of the core (labels 1+3, the
    habitats stage's default ROI `tumor_core`; oedema has no habitat), core voxels/ml, label
    volumes (ml).
  - `transforms.json`: per sequence the rigid RAS world-to-world `matrix` M applied (t1ce:
    identity), its `inverse`, rotation (deg, about x, y, z), translation (mm) and centre.
    seq(M p) = truth(p): to realign a sequence, sample it at M p for each truth-grid point p.
- `truth/planted.tsv`: one row per subject/session with every planted variable: markers,
  survival, `mismatch` (T2-FLAIR mismatch planted), `midline` (H3K27 midline location), tumour
  centre (template mm), radius, elongation, oedema reach, `enhancing`, `necrosis_frac`, planned
  habitat fractions (`frac_*`; IDH-mutant, MGMT-methylated and non-enhancing tumours have
  fewer hypervascular voxels, EGFR-amplified more), `rcbv_scale_hypovascular` (within-habitat
  rCBV factor: IDH-mutant x{cfg["idh_habitat_rcbv_ratio"]} times a small subject effect, log sd
  {cfg["subject_rcbv_sd"]}, so voxels keep their habitat), `rcbv_scale_hypervascular` (its square
  root: a lower rCBV moves these voxels towards the habitat boundary), `rcbv_sigma` (log sd of
  viable rCBV), `rcbv_upper_sigma` (log sd above the median in the hypervascular habitat:
  CDKN2A/B-deleted {cfg["cdkn2ab_upper_tail_sigma"]}, else = `rcbv_sigma`; a heavy upper
  tail), `heterogeneity` (H3K27-altered 0.45), `adc_scale`,
  `enhancement_gain`, anatomy warp, `growth` and `delta_hypervascular` for ses-02
  (progression: the hypervascular habitat grows).
- `truth/phi_strings.txt`: every fake PHI string in the DICOM headers (all contain `FAKEPHI`
  except the birth date `19610203`), including free text in StudyDescription/ImageComments.

## Signal model
Conventional sequences: tissue contrast relative to WM, tumour compartments (oedema T2/FLAIR
bright, T1 dark; enhancing rim on T1ce; necrosis T2 bright, FLAIR partly suppressed), PSF blur,
a rigid misalignment per sequence, smooth multiplicative bias field, site gain/gamma/offset,
Rician noise. ADC in 1e-6 mm^2/s (WM ~750, CSF ~3000; cellular tumour low, necrosis/oedema
high); rCBV relative (WM ~1, GM ~2; viable habitats lognormal around hypervascular ~4 and
hypovascular ~1.0 x their rcbv_scale_*, nonviable ~0.5, necrosis ~0.35, oedema ~0.9).
Site demo_b: maps x1.06 (ADC) and x1.2 (rCBV), different gains, contrast and noise.
"""
