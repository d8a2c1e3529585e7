"""DCE Tofts fits against the QIBA v11 Tofts and the anthropomorphic extended-Tofts DROs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.physiology import dce
from radiogenomics.physiology.session import dce_session


def rows(path):
    d = pd.read_csv(path)
    for _, r in d.iterrows():
        yield r, *(np.array(r[k].split(), float) for k in ("t", "C", "ca"))


@pytest.fixture(scope="module")
def dro(shared_data):
    return shared_data / "physiology" / "dce"


def test_tofts_dro_high_snr_rows_within_5_percent(dro):
    checked = 0
    for r, t, c, ca in rows(dro / "dce_DRO_data_tofts.csv"):
        if "highSNR" not in r.label:
            continue
        for fit in (dce.tofts_lls(c, ca, t, extended=False), dce.tofts_nlls(c, ca, t, False)):
            assert fit["Ktrans"][0] == pytest.approx(r.Ktrans, rel=0.05), r.label
            assert fit["ve"][0] == pytest.approx(r.ve, rel=0.05), r.label
        checked += 1
    assert checked == 5  # measured: all within 0.3%


def test_tofts_dro_noisy_rows_within_5_percent(dro):
    """SNR 20 rows too (measured worst: Ktrans 0.6%, ve 0.4% off)."""
    for r, t, c, ca in rows(dro / "dce_DRO_data_tofts.csv"):
        fit = dce.tofts_lls(c, ca, t, extended=False)
        assert fit["Ktrans"][0] == pytest.approx(r.Ktrans, rel=0.05), r.label
        assert fit["ve"][0] == pytest.approx(r.ve, rel=0.05), r.label


def test_extended_tofts_dro(dro):
    for r, t, c, ca in rows(dro / "dce_DRO_data_extended_tofts.csv"):
        fit = dce.tofts_lls(c, ca, t, extended=True)
        tol = 0.02 if "highSNR" in r.label else 0.1  # measured worst (SNR 20): vp 10% off
        assert fit["Ktrans"][0] == pytest.approx(r.Ktrans, rel=tol), r.label
        assert fit["ve"][0] == pytest.approx(r.ve, rel=tol), r.label
        assert fit["vp"][0] == pytest.approx(r.vp, rel=max(tol, 0.12), abs=2e-3), r.label


def test_forward_model_equals_dcmri():
    """Our exact piecewise-linear convolution equals dcmri's standard Tofts ('WV', H = 0)."""
    dc = pytest.importorskip("dcmri")
    t = np.arange(0, 300, 1.5)
    ca = dc.aif_parker(t, BAT=20) * 1000  # M -> mM
    ours = dce.tofts_forward(t, ca, ktrans=0.2, kep=0.2 / 0.3)
    theirs = dc.conc_tissue(ca, t=t, kinetics="WV", H=0.0, vi=0.3, Ktrans=0.2 / 60)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_spgr_concentration_inverts_the_signal_equation():
    tr, flip, t10, r1 = 0.005, 15.0, 1.4, 3.3
    conc = np.array([0.0, 0.0, 0.0, 0.5, 1.0, 2.0])
    r1t = 1 / t10 + r1 * conc
    e = np.exp(-tr * r1t)
    a = np.deg2rad(flip)
    s = 1000 * (1 - e) * np.sin(a) / (1 - np.cos(a) * e)
    np.testing.assert_allclose(dce.spgr_concentration(s, slice(0, 3), tr, flip, t10, r1), conc,
                               atol=1e-9)  # fmt: skip


def test_dce_session_writes_maps_from_a_signal_series(tmp_path):
    """SPGR signal from planted Ktrans/ve in a block, given AIF: the maps recover them."""
    dt, n = 2.0, 90
    t = np.arange(n) * dt
    ca = np.zeros(n)
    ca[5:] = 5 * np.exp(-(t[5:] - t[5]) / 60) * (1 - np.exp(-(t[5:] - t[5]) / 4))
    kt = np.zeros((6, 6, 2))
    kt[1:5, 1:5] = 0.1
    kt[3:5, 1:5] = 0.25
    ve = np.where(kt > 0, 0.3, 0.2)
    tr, flip, t10, r1 = 0.005, 15.0, 1.4, 3.3
    sig = np.zeros(kt.shape + (n,))
    for idx in np.ndindex(kt.shape):
        c = dce.tofts_forward(t, ca, kt[idx], kt[idx] / ve[idx]) if kt[idx] > 0 else 0 * t
        e = np.exp(-tr * (1 / t10 + r1 * c))
        sig[idx] = 1000 * (1 - e) / (1 - np.cos(np.deg2rad(flip)) * e)
    nib.save(nib.Nifti1Image(sig.astype(np.float32), np.eye(4)), str(tmp_path / "dce.nii.gz"))
    side = {"RepetitionTime": tr, "FlipAngle": flip, "TemporalResolution": dt}
    out = dce_session(tmp_path / "dce.nii.gz", side, tmp_path / "maps", aif=ca, t10=t10,
                      extended=False, baseline_volumes=5)  # fmt: skip
    assert {"ktrans", "ve", "kep"} <= set(out)
    k = nib.load(str(tmp_path / "maps" / "ktrans.nii.gz")).get_fdata()
    assert np.allclose(k[kt > 0], kt[kt > 0], rtol=0.02)
    v = nib.load(str(tmp_path / "maps" / "ve.nii.gz")).get_fdata()
    assert np.allclose(v[kt > 0], 0.3, rtol=0.02)


def test_enhancement_onset_and_flat_series():
    """Onset = first volume of the rise; a series that never enhances fails naming the file."""
    curve = np.full(40, 100.0)
    curve[8:] += 30 * (1 - np.exp(-np.arange(1, 33) / 3))
    assert dce.enhancement_onset(curve) == 8
    with pytest.raises(SubjectError, match="no enhancement") as err:
        dce.enhancement_onset(np.full(40, 100.0) + np.sin(np.arange(40)), file="dce.nii.gz")
    assert "dce.nii.gz" in str(err.value)
