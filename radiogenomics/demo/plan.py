"""Demo cohort generator (foundation stage): cheap plan of subjects, sessions, planted biology.

`plan_demo` draws everything decided per subject (markers, survival, tumour geometry, habitat
fractions, effect parameters) without touching an image, so the Snakefile can call it at parse time.
Image generation reads its row back from the same function, so the plan and the files always agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radiogenomics.config import section_defaults
from radiogenomics.paths import subject_seed

COHORTS = {
    # cohort: (role, site, scanner, subject prefix)
    "demo_a": ("discovery", "demo_a", "SIEMENS_Prisma_3T", "A"),
    "demo_b": ("validation", "demo_b", "GE_SignaHDxt_1.5T", "B"),
}

# Plausible white-matter tumour centres in MNI152 mm (checked against the WM map in the tests);
# the sign of x is drawn per subject so both hemispheres occur.
WM_CENTRES = np.array(
    [
        (25, 20, 25),  # frontal WM
        (28, -10, 30),  # centrum semiovale
        (30, -40, 28),  # parietal WM
        (40, -22, -8),  # temporal WM
        (22, 35, 5),  # anterior frontal WM
        (26, -58, 12),  # parieto-occipital WM
        (30, -20, 18),  # corona radiata
    ],
    dtype=float,
)
# Midline sites for H3K27-altered tumours: thalamus and pons, x kept near 0 so the tumour crosses.
MIDLINE_CENTRES = np.array([(0, -18, 6), (0, -28, -30)], dtype=float)

MARKER_COLUMNS = (
    "idh", "codeletion_1p19q", "mgmt", "egfr_amplification", "egfrviii", "chr7_gain_chr10_loss",
    "cdkn2ab", "h3k27", "tert",
)  # fmt: skip
# WHO CNS5 integrated types as planted (the generative logic below, written independently of
# radiogenomics.cohort.who_cns5 so the pipeline's derivation can be checked against it).
WHO_PLANTED = {
    "oligo": "oligodendroglioma_idhmut_codel",
    "astro": "astrocytoma_idhmut",
    "dmg": "diffuse_midline_glioma_h3k27",
    "gbm": "glioblastoma_idhwt",
    "none": "not_derivable",
}
LABEL_COLUMNS = (
    "subject", "site", "scanner", "age", "sex", *MARKER_COLUMNS,
    "os_days", "os_event", "pfs_days", "pfs_event", "progression",
)  # fmt: skip


def resolve_config(demo_cfg: dict | None) -> dict:
    """The demo section with the schema's defaults filled in (unset values too)."""
    cfg = section_defaults("demo", {k: v for k, v in (demo_cfg or {}).items() if v is not None})
    if cfg["size"] not in ("default", "small"):
        raise ValueError(f"demo.size must be 'default' or 'small', got {cfg['size']!r}")
    if float(cfg["resolution_mm"]) not in (1.0, 2.0):
        raise ValueError(f"demo.resolution_mm must be 1 or 2, got {cfg['resolution_mm']!r}")
    return cfg


def cohort_sizes(cfg: dict) -> dict[str, int]:
    """Number of subjects per demo cohort for the configured size."""
    small = cfg["size"] == "small"
    return {
        "demo_a": int(cfg["small_n_discovery" if small else "n_discovery"]),
        "demo_b": int(cfg["small_n_validation" if small else "n_validation"]),
    }


def _balanced(rng: np.random.Generator, n: int, fraction: float, minimum: int = 0) -> np.ndarray:
    """Shuffled boolean vector with round(fraction*n) True, kept within [minimum, n-minimum]."""
    k = int(round(fraction * n))
    if n >= 2 * minimum:
        k = min(max(k, minimum), n - minimum)
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return rng.permutation(out)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of a vector."""
    e = np.exp(x - x.max())
    return e / e.sum()


def _cohort_markers(rng: np.random.Generator, n: int, cfg: dict) -> pd.DataFrame:
    """Marker status for one cohort, with the co-occurrence pattern of adult diffuse glioma."""
    idh = _balanced(rng, n, cfg["idh_mutant_fraction"], minimum=2 if n >= 4 else 0)
    codel = np.zeros(n, dtype=bool)
    mut_idx = np.flatnonzero(idh)
    # 1p/19q codeletion only exists in IDH-mutant tumours (oligodendroglioma), ~40% of them.
    codel[mut_idx] = _balanced(rng, len(mut_idx), float(cfg["codeletion_fraction"]))
    # T2-FLAIR mismatch in ~half of IDH-mutant, 1p/19q-intact tumours (at least one if any exist).
    mismatch = np.zeros(n, dtype=bool)
    astro_idx = np.flatnonzero(idh & ~codel)
    if len(astro_idx):
        mismatch[astro_idx] = _balanced(
            rng, len(astro_idx), 0.5, minimum=1 if len(astro_idx) >= 2 else 0
        )
        if not mismatch.any():
            mismatch[astro_idx[0]] = True
    # H3K27-altered: IDH-wildtype diffuse midline glioma, ~10% (at least one per cohort).
    h3 = np.zeros(n, dtype=bool)
    wt_idx = np.flatnonzero(~idh)
    if len(wt_idx):
        h3[wt_idx] = _balanced(rng, len(wt_idx), 0.12, minimum=1 if len(wt_idx) >= 2 else 0)
    u = rng.random((5, n))
    mgmt = np.where(idh, u[0] < 0.8, u[0] < 0.45)
    # EGFR amplification: IDH-wildtype adult glioblastoma (not H3 K27-altered), a fixed share.
    egfr = np.zeros(n, dtype=bool)
    gbm_idx = np.flatnonzero(~idh & ~h3)
    egfr[gbm_idx] = _balanced(rng, len(gbm_idx), float(cfg["egfr_amplified_fraction"]))
    # EGFRvIII occurs (almost) only in EGFR-amplified tumours: a share of them.
    viii = np.zeros(n, dtype=bool)
    amp_idx = np.flatnonzero(egfr)
    viii[amp_idx] = _balanced(rng, len(amp_idx), float(cfg["egfrviii_fraction"]))
    cdkn = np.where(idh, u[2] < 0.15, u[2] < 0.5)
    tert = np.where(codel, u[3] < 0.95, np.where(idh, u[3] < 0.1, u[3] < 0.7))
    tert &= ~h3
    # +7/-10 in most IDH-wildtype glioblastomas, never in IDH-mutant or midline tumours here.
    cnv = ~idh & ~h3 & (u[4] < 0.6)
    return pd.DataFrame(
        {
            "idh": np.where(idh, "mutant", "wildtype"),
            "codeletion_1p19q": np.where(codel, "codeleted", "intact"),
            "mgmt": np.where(mgmt, "methylated", "unmethylated"),
            "egfr_amplification": np.where(egfr, "amplified", "not_amplified"),
            "egfrviii": np.where(viii, "positive", "negative"),
            "chr7_gain_chr10_loss": np.where(cnv, "present", "absent"),
            "cdkn2ab": np.where(cdkn, "deleted", "intact"),
            "h3k27": np.where(h3, "altered", "wildtype"),
            "tert": np.where(tert, "mutant", "wildtype"),
            "mismatch": mismatch,
            "midline": h3,
            "who_cns5_planted": [
                WHO_PLANTED[
                    "dmg"
                    if h
                    else ("oligo" if c else "astro")
                    if i
                    else ("gbm" if (e or t or v) else "none")
                ]
                for i, c, h, e, t, v in zip(idh, codel, h3, egfr, tert, cnv, strict=True)
            ],
        }
    )


def _edema_mm(rng: np.random.Generator, row: dict, idh: bool) -> float:
    """How far oedema reaches beyond the core (mm): little in mismatch and midline tumours."""
    if row["mismatch"] or row["midline"]:
        return float(rng.uniform(3, 7))
    return float(rng.uniform(8, 18) * (0.7 if idh else 1.0))


def _viable_rcbv_params(rng: np.random.Generator, idh: bool, cdkn_deleted: bool, cfg: dict) -> dict:
    """Within-habitat rCBV of the viable habitats: IDH shift, subject noise, CDKN2A/B upper tail.

    rCBV is relative to normal WM, so a whole-tumour scale would move voxels across the habitat
    definitions: the IDH effect lives mainly in the habitat composition (logits), plus a shift
    here that stays inside each habitat, the subject noise is small and the CDKN2A/B tail widens
    the hypervascular voxels upwards only.
    """
    idh_ratio = float(cfg["idh_habitat_rcbv_ratio"]) if idh else 1.0
    log_scale = np.log(idh_ratio) + rng.normal(0, float(cfg["subject_rcbv_sd"]))
    sigma = float(cfg["viable_rcbv_sigma"])
    return {
        "rcbv_scale_hypovascular": float(np.exp(log_scale)),
        # Half the log shift: a lower rCBV moves hypervascular voxels towards the boundary.
        "rcbv_scale_hypervascular": float(np.exp(0.5 * log_scale)),
        "rcbv_sigma": sigma,
        "rcbv_upper_sigma": float(cfg["cdkn2ab_upper_tail_sigma"]) if cdkn_deleted else sigma,
    }


def _tumour_params(rng: np.random.Generator, row: dict, cfg: dict) -> dict:
    """Geometry, habitat fractions and signal parameters of one subject's tumour (session 1)."""
    idh = row["idh"] == "mutant"
    mgmt = row["mgmt"] == "methylated"
    egfr = row["egfr_amplification"] == "amplified"
    viii = row["egfrviii"] == "positive"
    tert = row["tert"] == "mutant"
    if row["midline"]:
        centre = MIDLINE_CENTRES[rng.integers(len(MIDLINE_CENTRES))].copy()
        centre += rng.normal(0, [1.5, 2.0, 2.0])
        radius = rng.uniform(10, 14)
    else:
        centre = WM_CENTRES[rng.integers(len(WM_CENTRES))].copy()
        centre[0] *= rng.choice([-1.0, 1.0])
        centre += rng.normal(0, 3.0, 3)
        radius = rng.uniform(18, 26) if idh else rng.uniform(15, 24)
    # IDH-mutant gliomas often do not enhance; mismatch tumours never do.
    enhancing = bool(rng.random() < (0.3 if idh else 0.92)) and not row["mismatch"]
    necrosis = float(rng.uniform(0.15, 0.4)) if enhancing else 0.0
    if enhancing and tert:
        necrosis = min(necrosis + 0.05, 0.5)  # TERT: a weak push towards necrosis
    logits = np.array(
        [
            0.2 + 0.7 * egfr - 0.5 * mgmt - 0.6 * idh - (0.0 if enhancing else 1.0),
            # Midline (H3K27) tumours: dominated by one (hypovascular) habitat, more uniform.
            0.0 + 0.6 * mgmt + 0.3 * idh + 1.0 * row["midline"],
            -1.3 - 0.3 * idh,
        ]
    ) + rng.normal(0, 0.45, 3)
    p = _softmax(logits)
    frac = np.array(
        [(1 - necrosis) * p[0], (1 - necrosis) * p[1], necrosis + (1 - necrosis) * p[2]]
    )
    rcbv = _viable_rcbv_params(rng, idh, row["cdkn2ab"] == "deleted", cfg)
    return {
        "centre_x": centre[0],
        "centre_y": centre[1],
        "centre_z": centre[2],
        "radius_mm": radius,
        "elong_x": rng.uniform(0.8, 1.2),
        "elong_y": rng.uniform(0.8, 1.25),
        "elong_z": rng.uniform(0.75, 1.1),
        "edema_mm": _edema_mm(rng, row, idh),
        "enhancing": enhancing,
        "necrosis_frac": necrosis,
        "frac_hypervascular": frac[0],
        "frac_hypovascular": frac[1],
        "frac_nonviable": frac[2],
        **rcbv,
        # H3K27-altered: more uniform signal (less voxel-to-voxel heterogeneity).
        "heterogeneity": 0.45 if row["midline"] else float(rng.uniform(0.85, 1.15)),
        "adc_scale": float(np.exp(rng.normal(0.1 if idh else 0.0, 0.08))),
        "enhancement_gain": float(rng.uniform(0.7, 1.1)) if enhancing else 0.0,
        # EGFRvIII: a peritumoural signature (oedema: higher rCBV, lower ADC, lower FLAIR).
        "edema_rcbv_scale": float(np.exp(cfg["egfrviii_edema_rcbv_log_gain"])) if viii else 1.0,
        "edema_adc_scale": float(np.exp(cfg["egfrviii_edema_adc_log_gain"])) if viii else 1.0,
        "edema_flair_scale": float(np.exp(cfg["egfrviii_edema_flair_log_gain"])) if viii else 1.0,
    }


def _survival(rng: np.random.Generator, row: dict) -> dict:
    """OS/PFS (days, event) from IDH, hypervascular fraction, age and MGMT, with censoring."""
    lin = (
        -1.1 * (row["idh"] == "mutant")
        + 2.5 * (row["frac_hypervascular"] - 0.3)
        + 0.02 * (row["age"] - 55)
        - 0.35 * (row["mgmt"] == "methylated")
    )
    # Weibull (shape 1.5) with a median of ~450 days at lin = 0.
    scale = 450 / np.log(2) ** (1 / 1.5)
    os_days = scale * (-np.log(rng.random()) / np.exp(lin)) ** (1 / 1.5)
    pfs_days = os_days * rng.uniform(0.35, 0.8)
    censor = rng.uniform(250, 2200)
    return {
        "os_days": int(max(round(min(os_days, censor)), 5)),
        "os_event": int(os_days <= censor),
        "pfs_days": int(max(round(min(pfs_days, censor)), 3)),
        "pfs_event": int(pfs_days <= censor),
    }


def _raw_sessions(
    raw_cfg: dict, role: str, second: np.ndarray, seed: int, cohort: str
) -> tuple[np.ndarray, np.ndarray]:
    """Which subjects' session 01 and session 02 ship raw DSC/DWI series instead of maps.

    Validation: `validation_fraction` of the subjects, every session. Discovery: with
    `discovery_sessions: follow_up`, `discovery_fraction` of the subjects with a follow-up have
    that follow-up raw (their baseline, which trains the models, keeps its maps); with `all`,
    that fraction of all subjects, every session. A generator of its own, so every other planted
    value is the same whichever sessions ship raw series.
    """
    n = len(second)
    rng = np.random.default_rng(subject_seed(seed, "demo-raw", cohort))
    none = np.zeros(n, dtype=bool)
    if not raw_cfg["enabled"]:
        return none, none
    if role != "discovery":
        raw = _balanced(rng, n, float(raw_cfg["validation_fraction"]))
        return raw, raw
    fraction = float(raw_cfg["discovery_fraction"])
    if raw_cfg["discovery_sessions"] == "all":
        raw = _balanced(rng, n, fraction)
        return raw, raw
    later = none.copy()
    later[np.flatnonzero(second)] = _balanced(rng, int(second.sum()), fraction)
    return none, later


def _cohort_plan(cohort: str, n: int, cfg: dict, seed: int) -> list[dict]:
    """Rows (one per subject/session) for one cohort."""
    role, site, scanner, prefix = COHORTS[cohort]
    crng = np.random.default_rng(subject_seed(seed, "demo-plan", cohort))
    markers = _cohort_markers(crng, n, cfg).to_dict("records")
    second = _balanced(crng, n, float(cfg["second_session_fraction"]), minimum=0)
    if n >= 3 and float(cfg["second_session_fraction"]) > 0 and not second.any():
        second[crng.integers(n)] = True
    second_idx = np.flatnonzero(second)
    progression = np.full(n, np.nan)
    progression[second_idx] = _balanced(crng, len(second_idx), 0.5).astype(float)
    missing_rng = np.random.default_rng(subject_seed(seed, "demo-missing", cohort))
    raw_first, raw_second = _raw_sessions(cfg["raw_acquisitions"], role, second, seed, cohort)
    rows: list[dict] = []
    for i in range(n):
        subject = f"{prefix}{i + 1:03d}"
        rng = np.random.default_rng(subject_seed(seed, "demo-subject", cohort, subject))
        row: dict = {
            "cohort": cohort,
            "subject": subject,
            "role": role,
            "site": site,
            "scanner": scanner,
        }
        row.update(markers[i])
        idh = row["idh"] == "mutant"
        row["age"] = int(
            np.clip(rng.normal(12 if row["midline"] else (40 if idh else 60), 9), 5, 88)
        )
        row["sex"] = "M" if rng.random() < 0.57 else "F"
        row.update(_tumour_params(rng, row, cfg))
        row.update(_survival(rng, row))
        row["anat_scale_x"], row["anat_scale_y"], row["anat_scale_z"] = rng.uniform(0.92, 1.08, 3)
        row["anat_rot_deg"] = float(rng.normal(0, 3))
        row["anat_shift_x"], row["anat_shift_y"], row["anat_shift_z"] = rng.normal(0, 4, 3)
        row["progression"] = progression[i]
        row["n_sessions"] = 2 if second[i] else 1
        row["raw_acquisitions"] = bool(raw_first[i])
        # Labels that a real clinic would not have tested (blank in the labels table only).
        row["label_missing"] = ",".join(
            m
            for m in MARKER_COLUMNS[1:]
            if missing_rng.random() < float(cfg["missing_label_fraction"])
        )
        if second[i]:
            later = _second_session(rng, row) | {"raw_acquisitions": bool(raw_second[i])}
            # PFS follows the habitat change (the review's spatiotemporal finding): growth of the
            # hypervascular-cellular habitat shortens it (hazard x e^(10*delta), Weibull shape 1.5).
            scale = 300 / np.log(2) ** (1 / 1.5)
            pfs = scale * (-np.log(rng.random()) / np.exp(10.0 * later["delta_hypervascular"])) ** (
                1 / 1.5
            )
            censor = rng.uniform(250, 1500)
            row["pfs_days"] = int(max(3, round(min(pfs, censor, row["os_days"]))))
            row["pfs_event"] = int(pfs <= min(censor, row["os_days"]))
            later["pfs_days"], later["pfs_event"] = row["pfs_days"], row["pfs_event"]
        rows.append({**row, "session": "01", "growth": 1.0, "delta_hypervascular": 0.0})
        if second[i]:
            rows.append(later)
    return rows


def _second_session(rng: np.random.Generator, row: dict) -> dict:
    """Session 02: progression grows the hypervascular-cellular habitat, pseudoprogression not."""
    prog = bool(row["progression"] == 1)
    growth = rng.uniform(1.12, 1.35) if prog else rng.uniform(1.0, 1.2)
    # Overlapping distributions: the change predicts progression, but not perfectly.
    delta = rng.normal(0.15, 0.07) if prog else rng.normal(-0.02, 0.07)
    hyper = float(np.clip(row["frac_hypervascular"] + delta, 0.02, 0.9))
    rest = 1 - hyper
    old_rest = row["frac_hypovascular"] + row["frac_nonviable"]
    hypo = rest * row["frac_hypovascular"] / old_rest
    nonviable = rest - hypo
    necrosis = min(row["necrosis_frac"], nonviable)
    return {
        **row,
        "session": "02",
        "growth": growth,
        "delta_hypervascular": hyper - row["frac_hypervascular"],
        "radius_mm": row["radius_mm"] * growth,
        "edema_mm": row["edema_mm"] * (1.0 if prog else 1.3),
        "frac_hypervascular": hyper,
        "frac_hypovascular": hypo,
        "frac_nonviable": nonviable,
        "necrosis_frac": necrosis,
    }


def plan_demo(demo_cfg: dict | None, seed: int) -> pd.DataFrame:
    """One row per demo subject/session: cohort, role, site, scanner, labels, planted parameters."""
    cfg = resolve_config(demo_cfg)
    rows: list[dict] = []
    for cohort, n in cohort_sizes(cfg).items():
        rows.extend(_cohort_plan(cohort, n, cfg, int(seed)))
    df = pd.DataFrame(rows)
    first = ["cohort", "subject", "session", "role", "site", "scanner", "n_sessions"]
    df = df[first + [c for c in df.columns if c not in first]]
    for col in df.columns:
        if df[col].dtype == float:
            df[col] = df[col].round(6)
    return df.reset_index(drop=True)


def labels_table(plan: pd.DataFrame, cohort: str) -> pd.DataFrame:
    """Clinical/molecular labels table of one cohort (one row per subject, blank = not tested)."""
    first = plan[(plan["cohort"] == cohort) & (plan["session"] == "01")]
    out = first[list(LABEL_COLUMNS)].copy().astype(object)
    for i, missing in zip(out.index, first["label_missing"], strict=True):
        for marker in filter(None, str(missing).split(",")):
            out.at[i, marker] = ""
    out["progression"] = [("" if pd.isna(v) else str(int(v))) for v in first["progression"]]
    return out.reset_index(drop=True)
