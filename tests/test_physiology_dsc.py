"""DSC map computation against the OSIPI LCB_BNI_USA worked example (real dual-echo glioma curves)
and its own invariants: deconvolution, timing, AIF selection, bad input, PHI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.io import loadmat

from radiogenomics.errors import SubjectError
from radiogenomics.physiology import dsc, phi
from radiogenomics.physiology.session import dsc_session

TE1, TE2, TR = 0.002, 0.030, 1.5
BASE = slice(0, 40)  # the worked example's baseline (points 0-39)


@pytest.fixture(scope="module")
def bni(shared_data):
    d = loadmat(shared_data / "physiology" / "dsc" / "bni_dual_echo_glioma_curves.mat")
    assert float(d["TR"].squeeze()) == TR and float(d["TE2"].squeeze()) == TE2
    return {k: np.asarray(d[k], np.float64) for k in ("tumor_SIt", "NAWM_SIt", "AIF_SIt")}


def example_curves(bni):
    """Tumour dual-echo dR2*, the NAWM (TE2) reference and the measured AIF as the source did:
    first echo only (2 ms; the 30 ms arterial signal loses too much to be linear)."""
    t = dsc.delta_r2s_dual(bni["tumor_SIt"][0], bni["tumor_SIt"][1], BASE, TE1, TE2)
    ref = dsc.delta_r2s_single(bni["NAWM_SIt"][1], BASE, TE2)
    aif = dsc.delta_r2s_single(bni["AIF_SIt"][0], BASE, TE1)
    return t, ref, aif


def test_bni_dual_echo_cbv_reproduces_the_worked_example(bni):
    tumour, ref, aif = example_curves(bni)
    corrected, k1, k2 = dsc.bsw_correct(tumour[None], ref, TR)
    cbv = 100 * np.trapezoid(corrected[0]) / np.trapezoid(aif)
    # Worked example: 38.2 mL/100 mL (measured: 38.18). T2*-dominant leakage: K2 < 0.
    assert cbv == pytest.approx(38.2, rel=0.02)
    assert k2[0] < 0 and k1[0] == pytest.approx(1.0, abs=0.05)


def test_bni_cbf_and_mtt_by_osvd_against_the_example(bni):
    """oSVD (block-circulant, OI <= 0.095) vs the example's Volterra + L-curve Tikhonov.

    In physical units (F R(t) in 1/s x 6000) oSVD gives 607 mL/100 mL/min and MTT 3.8 s; the
    example divides max F R(t) by TR once more (its matrix already carries TR), so in its
    convention oSVD reads 405 vs 337.6 and 5.7 s vs 6.8 s. The rest is regularisation: Tikhonov
    with the L-curve smooths the residue's peak more than oSVD's truncation."""
    tumour, ref, aif = example_curves(bni)
    corrected, _, _ = dsc.bsw_correct(tumour[None], ref, TR)
    flow, thr = dsc.circulant_deconvolve(corrected, aif, TR)
    cbv = 100 * np.trapezoid(corrected[0]) / np.trapezoid(aif)
    cbf = 6000 * flow[0]
    assert cbf == pytest.approx(607, rel=0.02)
    assert 60 * cbv / cbf == pytest.approx(3.77, rel=0.02)
    example_convention = cbf / TR
    assert example_convention == pytest.approx(337.6, rel=0.25)
    assert 60 * cbv / example_convention == pytest.approx(6.8, rel=0.25)
    assert 0 < thr[0] < 0.2


def test_single_echo_leakage_makes_uncorrected_cbv_negative_and_bsw_positive(bni):
    _, ref, aif = example_curves(bni)
    te2_curve = dsc.delta_r2s_single(bni["tumor_SIt"][1], BASE, TE2)
    uncorrected = 100 * np.trapezoid(te2_curve) / np.trapezoid(aif)
    corrected, _, k2 = dsc.bsw_correct(te2_curve[None], ref, TR)
    cbv = 100 * np.trapezoid(corrected[0]) / np.trapezoid(aif)
    assert uncorrected < -50  # measured -104.8: T1 leakage dominates the 30 ms echo
    assert cbv > 0 and k2[0] > 0  # measured 6.8 mL/100 mL, K2 = +0.036 /s
    assert cbv == pytest.approx(6.8, rel=0.05)


def test_fft_truncation_equals_block_circulant_svd(bni):
    """Truncating the block-circulant SVD = zeroing DFT components below the same threshold."""
    tumour, ref, aif = example_curves(bni)
    corrected, _, _ = dsc.bsw_correct(tumour[None], ref, TR)
    flow, thr = dsc.circulant_deconvolve(corrected, aif, TR)
    n = aif.size
    length = 2 * n
    a = np.zeros(length)
    a[:n] = aif
    circ = np.array([[a[(i - j) % length] for j in range(length)] for i in range(length)]) * TR
    u, s, vt = np.linalg.svd(circ)
    keep = s >= thr[0] * s.max()
    c = np.zeros(length)
    c[:n] = corrected[0]
    residue = vt.T[:, keep] @ ((u.T[keep] @ c) / s[keep])
    assert residue.max() == pytest.approx(flow[0], rel=1e-9)


def test_deconvolution_is_insensitive_to_aif_delay(bni):
    tumour, ref, aif = example_curves(bni)
    corrected, _, _ = dsc.bsw_correct(tumour[None], ref, TR)
    settings = dsc.DscSettings(svd_thresholds=(0.1,))
    base, _ = dsc.circulant_deconvolve(corrected, aif, TR, settings)
    # A 6 s later tissue curve (its last 4 points wrap to the start, where the curve is ~0).
    late, _ = dsc.circulant_deconvolve(np.roll(corrected, 4, axis=1), aif, TR, settings)
    assert late[0] == pytest.approx(base[0], rel=1e-3)


def test_timing_on_real_curves(bni):
    t = dsc.detect_timing(bni["NAWM_SIt"][1])
    assert 40 <= t.arrival <= 47 and t.baseline.start == 2 and t.minimum > t.arrival
    with pytest.raises(SubjectError, match="no detectable bolus"):
        dsc.detect_timing(bni["NAWM_SIt"][0])  # 2 ms echo: the bolus barely shows


def test_peak_height_and_psr_of_a_known_curve():
    n = 60
    s = np.full(n, 1000.0)
    s[20:25] = [900, 600, 500, 700, 850]
    s[25:] = 950.0
    t = dsc.detect_timing(s)
    assert t.arrival in (19, 20)  # 3-point smoothing may flag the point before the first drop
    psr = dsc.percentage_signal_recovery(s[None], t)[0]
    assert psr == pytest.approx(100 * (950 - 500) / (1000 - 500))
    ph = dsc.peak_height(dsc.delta_r2s_single(s[None], t.baseline, 0.03), t)[0]
    assert ph == pytest.approx(-np.log(0.5) / 0.03)


def test_aif_selection_prefers_arterial_curves_and_falls_back_when_none():
    rng = np.random.default_rng(0)
    t = np.arange(60) * 1.5
    art = 25 * np.exp(-(((t - 20) / 3) ** 2))
    tis = 2.5 * np.exp(-(((t - 24) / 6) ** 2))
    curves = np.vstack([np.tile(tis, (300, 1)), np.tile(art, (12, 1))])
    curves += rng.normal(0, 0.2, curves.shape)
    timing = dsc.Timing(slice(2, 10), 10, 14, 60)
    aif, idx, info = dsc.select_aif(curves, 1.5, timing=timing)
    assert set(idx) <= set(range(300, 312)) and len(idx) == 10
    assert np.corrcoef(aif, art)[0, 1] > 0.99
    none, _, info = dsc.select_aif(curves[:300], 1.5, timing=timing)
    assert none is None and info["candidates"] == 0
    pop = dsc.population_aif(60, 1.5, 10)
    assert pop[:9].max() < 0.05 * pop.max() and pop[10] >= 0.05 * pop.max()
    assert 10 < np.argmax(pop) < 20


def write_series(path, data, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4) if affine is None
                             else affine), str(path))  # fmt: skip
    return path


def bolus_series(n=40, arrival=12, depth=0.3, shape=(8, 8, 4)):
    """A head of constant tissue with one bolus dip (no noise)."""
    t = np.arange(n)
    dip = 1 - depth * np.exp(-(((t - arrival - 4) / 2.5) ** 2)) * (t >= arrival)
    vol = np.zeros(shape + (n,), np.float32)
    vol[1:-1, 1:-1, :, :] = 1000 * dip
    return vol


@pytest.mark.parametrize(
    "series, message",
    [
        (bolus_series(n=12, arrival=5), "12 time points, at least 20"),
        (bolus_series(arrival=1), "no baseline"),
        (bolus_series(depth=0.0), "no detectable bolus"),
    ],
)
def test_bad_dsc_series_fail_naming_the_file(tmp_path, series, message):
    path = write_series(tmp_path / "dsc.nii.gz", series)
    no_motion = dsc.MotionSettings(enabled=False)
    with pytest.raises(SubjectError, match=message) as err:
        dsc_session(path, {"RepetitionTime": 1.5, "EchoTime": 0.03}, tmp_path / "out",
                    motion=no_motion)  # fmt: skip
    assert str(path) in str(err.value)


def test_three_d_file_where_a_series_is_expected_names_the_file(tmp_path):
    path = write_series(tmp_path / "dsc.nii.gz", np.ones((8, 8, 4)))
    with pytest.raises(SubjectError, match="must be 4-D") as err:
        dsc_session(path, {"RepetitionTime": 1.5, "EchoTime": 0.03}, tmp_path / "out")
    assert str(path) in str(err.value)


def test_four_d_file_where_a_mask_is_expected_names_the_file(tmp_path):
    path = write_series(tmp_path / "dsc.nii.gz", bolus_series())
    mask = write_series(tmp_path / "wm.nii.gz", np.ones((8, 8, 4, 3)))
    with pytest.raises(SubjectError, match="must be 3-D") as err:
        dsc_session(path, {"RepetitionTime": 1.5, "EchoTime": 0.03}, tmp_path / "out",
                    wm_mask=mask, motion=dsc.MotionSettings(enabled=False))  # fmt: skip
    assert str(mask) in str(err.value)


def test_sidecar_in_milliseconds_is_refused(tmp_path):
    path = write_series(tmp_path / "dsc.nii.gz", bolus_series())
    with pytest.raises(SubjectError, match="not ms"):
        dsc_session(path, {"RepetitionTime": 1500, "EchoTime": 30}, tmp_path / "out")


def test_dual_echo_session_on_real_curves_matches_the_curve_level_result(bni, tmp_path):
    """A 4-D dual-echo phantom from the real curves (NAWM everywhere, a tumour block, four
    arterial voxels): the session's maps equal the curve-level computation with the same AIF."""
    rng = np.random.default_rng(1)
    shape = (10, 10, 3)
    labels = np.ones(shape, int)
    labels[6:9, 6:9, :] = 2  # tumour
    labels[1:3, 1:3, :] = 3  # artery (12 voxels)
    src = {1: "NAWM_SIt", 2: "tumor_SIt", 3: "AIF_SIt"}
    echoes = []
    for e in range(2):
        vol = np.zeros(shape + (121,))
        for lab, key in src.items():
            vol[labels == lab] = bni[key][e]
        vol *= 1 + 0.002 * rng.standard_normal(shape + (1,))  # voxel gain, no temporal noise
        echoes.append(write_series(tmp_path / f"echo{e + 1}.nii.gz", vol))
    wm = np.zeros(shape, np.float32)
    wm[labels == 1] = 1
    write_series(tmp_path / "wm.nii.gz", wm)
    out = dsc_session(
        echoes,
        {"RepetitionTime": TR, "EchoTime": [TE1, TE2]},
        tmp_path / "maps",
        wm_mask=tmp_path / "wm.nii.gz",
        motion=dsc.MotionSettings(enabled=False),
    )
    meta = out["meta"]
    assert meta["method"] == "DSC: dual-echo" and meta["aif"]["source"] == "automatic"
    rcbv = nib.load(str(tmp_path / "maps" / "rcbv.nii.gz")).get_fdata()
    cbv = nib.load(str(tmp_path / "maps" / "cbv.nii.gz")).get_fdata()
    k2 = nib.load(str(tmp_path / "maps" / "k2.nii.gz")).get_fdata()
    assert np.median(rcbv[labels == 1]) == pytest.approx(1.0)
    # Curve level with the session's own baseline and its dual-echo AIF from the arterial voxels.
    b = slice(*meta["baseline"])
    aif = dsc.delta_r2s_dual(bni["AIF_SIt"][0], bni["AIF_SIt"][1], b, TE1, TE2)
    tum = dsc.delta_r2s_dual(bni["tumor_SIt"][0], bni["tumor_SIt"][1], b, TE1, TE2)
    nawm = dsc.delta_r2s_dual(bni["NAWM_SIt"][0], bni["NAWM_SIt"][1], b, TE1, TE2)
    corrected, _, _ = dsc.bsw_correct(tum[None], nawm, TR, slice(b.start, None))
    win = slice(b.start, None)
    expected = 100 * np.trapezoid(corrected[0, win]) / np.trapezoid(aif[win])
    assert np.median(cbv[labels == 2]) == pytest.approx(expected, rel=0.03)
    assert abs(np.median(k2[labels == 1])) < 1e-3
    side = (tmp_path / "maps" / "rcbv.json").read_text()
    assert "normal-appearing white matter" in side and "automatic" in side


def test_phi_identical_populations_are_homogeneous_and_different_are_not():
    rng = np.random.default_rng(0)
    t = np.arange(50)
    shape = (20, 20, 4)

    def curves(depth, width, n):
        dip = depth[:, None] * np.exp(-(((t - 20) / width[:, None]) ** 2))
        return 1000 * (1 - dip) + rng.normal(0, 5, (n, t.size))

    near = np.zeros(shape, bool)
    near[:10] = True
    far = ~near
    n = near.sum()
    same = np.zeros(shape + (50,))
    same[near] = curves(rng.normal(0.3, 0.05, n), rng.normal(4, 0.5, n), n)
    same[far] = curves(rng.normal(0.3, 0.05, n), rng.normal(4, 0.5, n), n)
    diff = same.copy()
    diff[far] = curves(rng.normal(0.15, 0.05, n), rng.normal(6, 0.5, n), n)
    a = phi.peritumoral_heterogeneity_index(same, near, far)
    b = phi.peritumoral_heterogeneity_index(diff, near, far)
    assert a["phi_distance"] < 0.05 and a["phi_homogeneity"] > 0.95
    assert b["phi_distance"] > 1.0 and b["phi_homogeneity"] < 0.4
    assert a["peak_drop_ratio"] == pytest.approx(1.0, abs=0.05)
    assert b["peak_drop_ratio"] > 1.5
    # Scanner gain is not heterogeneity: scaling the far ring leaves PHI unchanged.
    scaled = same.copy()
    scaled[far] *= 3.0
    c = phi.peritumoral_heterogeneity_index(scaled, near, far)
    assert c["phi_distance"] == pytest.approx(a["phi_distance"], abs=0.02)
    with pytest.raises(SubjectError, match="usable voxels"):
        phi.peritumoral_heterogeneity_index(same, near & (np.arange(20)[:, None, None] < 1)
                                            & (np.arange(20)[None, :, None] < 1), far)  # fmt: skip


def test_motion_reference_on_a_half_voxel_offset_grid_keeps_world_positions():
    # A linear ramp is reproduced exactly by the cubic B-spline: each voxel of the offset grid
    # holds the ramp's value at that voxel's own world position.
    ijk = np.moveaxis(np.indices((20, 18, 16)), 0, -1)

    def ramp(affine):
        x, y, z = np.moveaxis(nib.affines.apply_affine(affine, ijk), -1, 0)
        return 0.3 * x - 0.2 * y + 0.1 * z

    affine = np.diag([3.5, 3.5, 5.0, 1.0])
    affine[:3, 3] = [-100.0, -90.0, -40.0]
    shifted = dsc._half_voxel_offset(nib.Nifti1Image(ramp(affine).astype(np.float32), affine))
    np.testing.assert_allclose(shifted.affine[:3, 3], affine[:3, 3] + [1.75, 1.75, 2.5])
    # Away from the edges, where the spline's boundary condition bends the ramp.
    inner = (slice(4, -4),) * 3
    np.testing.assert_allclose(
        np.asarray(shifted.dataobj)[inner], ramp(shifted.affine)[inner], atol=5e-3
    )
