"""Demo cohort generator (foundation stage): raw DSC and DWI acquisitions of a demo session.

Sessions whose plan row says `raw_acquisitions` ship a 4-D DSC series and a 3-b-value DWI series
instead of the ready-made rCBV and ADC maps. Both are simulated (`demo.acquisitions`) from the
planted maps on the truth grid (`planted_maps`: normal tissue values with the tumour's habitat maps
painted in, before any point-spread function, motion or site calibration), sampled on a clinical
EPI grid (`ACQ_SHAPE` voxels of `ACQ_VOXEL_MM`, axial, centred on the brain) through the
sequence's planted rigid motion and a Gaussian point-spread function one voxel wide. The same
sampling (`sample_on_grid`) gives the planted map on the acquisition grid that a computed map is
scored against. Middle cerebral artery segments (`artery_mask`) carry the arterial input function.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from radiogenomics.demo.acquisitions import DscProtocol, DwiProtocol, simulate_dsc, simulate_dwi
from radiogenomics.demo.anatomy import Anatomy
from radiogenomics.demo.sequences import normal_signal, tumour_signal
from radiogenomics.demo.tumour import Tumour

ACQ_SHAPE = (64, 64, 24)
ACQ_VOXEL_MM = (3.5, 3.5, 5.0)
# Centre of the acquisition slab in template mm (the brain's centre, cerebellum to vertex).
SLAB_CENTRE_MNI = np.array([0.0, -18.0, 8.0])
# M1 segments of both middle cerebral arteries in template mm (from the carotid terminus to the
# sylvian fissure), 3 mm wide: enough pure-blood voxels for the automatic AIF.
ARTERY_SEGMENTS_MNI = (
    (np.array([12.0, 2.0, -14.0]), np.array([40.0, 6.0, -8.0])),
    (np.array([-12.0, 2.0, -14.0]), np.array([-40.0, 6.0, -8.0])),
)
ARTERY_RADIUS_MM = 2.6
# Signal scale of the T2(*)-weighted EPI baselines (WM T2 contrast 0.55 -> 550).
EPI_GAIN = 1000.0
# Planted T1 leakage of enhancing tumour (1/s) per unit of planted enhancement gain.
K2_PER_ENHANCEMENT = 0.06
# Site protocols: demo_a 3 T (TE 30 ms), demo_b 1.5 T (TE 45 ms: the longer echo offsets the
# weaker susceptibility effect at the lower field).
DSC_PROTOCOLS = {
    "demo_a": DscProtocol(n_timepoints=45, tr=1.5, te=0.030, b0_t=3.0),
    "demo_b": DscProtocol(n_timepoints=45, tr=1.5, te=0.045, b0_t=1.5),
}
DWI_PROTOCOL = DwiProtocol(bvals=(0.0, 500.0, 1000.0), directions=3)
DSC_SIDECAR = {"FlipAngle": 60, "ContrastBolusIngredient": "GADOLINIUM"}
DWI_TIMING = {"RepetitionTime": 6.0, "EchoTime": 0.08}


def acquisition_grid(anat: Anatomy) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine of the session's EPI grid (axis-aligned, centred on the brain)."""
    centre = (anat.mni_to_subject @ np.append(SLAB_CENTRE_MNI, 1.0))[:3]
    voxel = np.asarray(ACQ_VOXEL_MM)
    affine = np.diag([*voxel, 1.0])
    affine[:3, 3] = centre - voxel * (np.asarray(ACQ_SHAPE) - 1) / 2.0
    return ACQ_SHAPE, affine


def sample_on_grid(
    data: np.ndarray,
    truth_affine: np.ndarray,
    grid_shape: tuple[int, ...],
    grid_affine: np.ndarray,
    matrix: np.ndarray | None = None,
    order: int = 1,
    psf: bool = True,
) -> np.ndarray:
    """A truth-grid volume as the acquisition sees it: Gaussian PSF of one acquisition voxel
    (FWHM), then the value at M^-1 q for every acquisition voxel centre q (seq(M p) = truth(p))."""
    arr = np.asarray(data, np.float32)
    truth_mm = np.sqrt((np.asarray(truth_affine)[:3, :3] ** 2).sum(axis=0))
    grid_mm = np.sqrt((np.asarray(grid_affine)[:3, :3] ** 2).sum(axis=0))
    if psf:
        arr = ndimage.gaussian_filter(arr, grid_mm / 2.3548 / truth_mm)
    m = np.eye(4) if matrix is None else np.asarray(matrix, np.float64)
    vox = np.linalg.inv(truth_affine) @ np.linalg.inv(m) @ np.asarray(grid_affine)
    return ndimage.affine_transform(
        arr,
        vox[:3, :3],
        offset=vox[:3, 3],
        output_shape=tuple(grid_shape),
        order=order,
        mode="constant",
        cval=0.0,
        prefilter=False,
    ).astype(np.float32)


def artery_mask(
    anat: Anatomy, grid_shape: tuple[int, ...], grid_affine: np.ndarray, matrix: np.ndarray
) -> np.ndarray:
    """Acquisition voxels whose centre lies within ARTERY_RADIUS_MM of an MCA segment."""
    idx = np.indices(grid_shape).reshape(3, -1)
    world = np.asarray(grid_affine) @ np.vstack([idx, np.ones(idx.shape[1])])
    # Acquisition world -> truth world (inverse motion) -> template mm.
    mni = np.linalg.inv(anat.mni_to_subject) @ np.linalg.inv(matrix) @ world
    pts = mni[:3].T
    near = np.zeros(pts.shape[0], bool)
    for a, b in ARTERY_SEGMENTS_MNI:
        ab = b - a
        t = np.clip(((pts - a) @ ab) / float(ab @ ab), 0.0, 1.0)
        dist = np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)
        near |= dist <= ARTERY_RADIUS_MM
    return near.reshape(grid_shape)


def planted_maps(row: dict, anat: Anatomy, tum: Tumour, maps: dict) -> dict[str, np.ndarray]:
    """Truth-grid planted rCBV (WM = 1), ADC (1e-6 mm^2/s), K2 (1/s) and the T2-weighted EPI
    baseline S0 of one session: normal tissue values with the tumour painted in."""
    tmask = tum.labels > 0
    out = {}
    for seq in ("rcbv", "adc"):
        sig = normal_signal(seq, anat)
        sig[tmask] = maps[seq][tmask]
        out[seq] = sig
    out["k2"] = np.where(
        tum.labels == 3, K2_PER_ENHANCEMENT * float(row["enhancement_gain"]), 0.0
    ).astype(np.float32)
    s0 = normal_signal("t2", anat)
    for mask, values in tumour_signal("t2", row, tum, np.ones(anat.shape, np.float32)).values():
        s0[mask] = values
    out["s0"] = (EPI_GAIN * s0).astype(np.float32)
    return out


def render_raw(
    row: dict,
    cohort: str,
    anat: Anatomy,
    planted: dict[str, np.ndarray],
    motion: dict[str, np.ndarray],
    seed: int,
) -> dict[str, dict]:
    """The session's DSC and DWI acquisitions: {"dsc"|"dwi": {"series", "affine", "sidecar",
    ("bvals", "bvecs")}}. `motion`: planted rigid matrix per acquisition (truth -> sequence)."""
    shape, affine = acquisition_grid(anat)
    out: dict[str, dict] = {}
    m = motion["dsc"]
    s0 = sample_on_grid(planted["s0"], anat.affine, shape, affine, m)
    rcbv = sample_on_grid(planted["rcbv"], anat.affine, shape, affine, m)
    k2 = sample_on_grid(planted["k2"], anat.affine, shape, affine, m)
    artery = artery_mask(anat, shape, affine, m) & (s0 > 0.2 * float(np.percentile(s0, 99)))
    # Blood's T2* baseline sits a little below tissue's.
    s0 = np.where(artery, 0.9 * np.median(s0[s0 > 0.2 * s0.max()]), s0).astype(np.float32)
    protocol = DSC_PROTOCOLS[cohort]
    dsc = simulate_dsc(
        s0, rcbv, affine, k2=k2, artery=artery, protocol=protocol, seed=seed
    )  # fmt: skip
    out["dsc"] = {
        "series": dsc["series"],
        "affine": affine,
        "sidecar": {
            "RepetitionTime": protocol.tr,
            "EchoTime": protocol.te,
            "MagneticFieldStrength": protocol.b0_t,
            **DSC_SIDECAR,
        },
        "artery_voxels": int(artery.sum()),
        "artery_mask": artery,
        "protocol": {
            "n_timepoints": protocol.n_timepoints,
            "tr_s": protocol.tr,
            "te_s": protocol.te,
            "b0_t": protocol.b0_t,
            "noise": protocol.noise,
            "max_rotation_deg": protocol.max_rotation_deg,
            "max_translation_mm": protocol.max_translation_mm,
        },  # fmt: skip
    }
    m = motion["dwi"]
    s0_dwi = sample_on_grid(planted["s0"], anat.affine, shape, affine, m)
    adc = sample_on_grid(planted["adc"], anat.affine, shape, affine, m)
    dwi = simulate_dwi(s0_dwi, adc, protocol=DWI_PROTOCOL, seed=seed + 1)
    out["dwi"] = {
        "series": dwi["series"],
        "affine": affine,
        "bvals": dwi["bvals"],
        "bvecs": dwi["bvecs"],
        "sidecar": dict(DWI_TIMING),
        "protocol": {
            "bvals": list(DWI_PROTOCOL.bvals),
            "directions": DWI_PROTOCOL.directions,
            "noise": DWI_PROTOCOL.noise,
        },  # fmt: skip
    }
    return out


def protocol_for(cohort: str, **changes) -> DscProtocol:
    """The DSC protocol of a demo site, with optional changes (tests, benchmarks)."""
    return replace(DSC_PROTOCOLS[cohort], **changes)
