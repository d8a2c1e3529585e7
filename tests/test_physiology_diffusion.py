"""DWI/DTI/IVIM map computation on real dipy data and the OSIPI IVIM reference signals."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.physiology import diffusion
from radiogenomics.physiology.session import dwi_session


@pytest.fixture(scope="module")
def dwi_dir(shared_data):
    return shared_data / "physiology" / "dwi"


def test_dti_maps_equal_dipy_tensor_model(dwi_dir, tmp_path):
    """The session's FA/MD (written float32, MD in 1e-6 mm^2/s) equal dipy's own fit."""
    from dipy.core.gradients import gradient_table
    from dipy.reconst.dti import TensorModel

    img = nib.load(str(dwi_dir / "small_64D.nii"))
    data = np.asarray(img.dataobj, np.float64)
    bvals, bvecs = diffusion.read_gradients(dwi_dir / "small_64D.bval", dwi_dir / "small_64D.bvec")
    mask = data[..., bvals < 50].mean(axis=-1) > 0
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), str(tmp_path / "mask.nii.gz"))
    out = dwi_session(dwi_dir / "small_64D.nii", dwi_dir / "small_64D.bval",
                      dwi_dir / "small_64D.bvec", tmp_path / "maps",
                      mask=tmp_path / "mask.nii.gz")  # fmt: skip
    assert {"adc", "fa", "md"} <= set(out) and "ivim_d" not in out  # one shell: no IVIM
    ref = TensorModel(gradient_table(bvals, bvecs=bvecs)).fit(data, mask=mask)
    fa = nib.load(str(tmp_path / "maps" / "fa.nii.gz")).get_fdata()
    md = nib.load(str(tmp_path / "maps" / "md.nii.gz")).get_fdata()
    np.testing.assert_allclose(fa[mask], np.nan_to_num(ref.fa)[mask], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(md[mask], 1e6 * ref.md[mask], rtol=1e-5, atol=1e-3)
    bright = mask & (data[..., 0] > np.median(data[..., 0][mask]))
    assert np.median(fa[bright]) == pytest.approx(0.24, abs=0.03)  # README: about 0.24
    assert np.median(md[bright]) == pytest.approx(1700, rel=0.1)  # README: about 1.7e-3 mm^2/s
    # Trace ADC (geometric mean over 64 directions) estimates the same mean diffusivity.
    adc = nib.load(str(tmp_path / "maps" / "adc.nii.gz")).get_fdata()
    assert np.median(adc[bright]) == pytest.approx(np.median(md[bright]), rel=0.05)
    side = json.loads((tmp_path / "maps" / "adc.json").read_text())
    assert side["units"] == "1e-6 mm^2/s" and side["adc"]["b_max"] == 1000


def test_adc_of_real_multishell_dwi_is_physiological(dwi_dir):
    img = nib.load(str(dwi_dir / "small_101D.nii.gz"))
    data = np.asarray(img.dataobj, np.float64)
    bvals, bvecs = diffusion.read_gradients(dwi_dir / "small_101D.bval",
                                            dwi_dir / "small_101D.bvec")  # fmt: skip
    diffusion.check_gradients(bvals, bvecs, data.shape[3])
    b0 = data[..., bvals <= 50].mean(axis=-1)
    brain = b0 > np.percentile(b0, 50)
    b, _ = diffusion.trace_signals(data[brain][:1], bvals, 1030)
    assert b.size == 4 and b.max() < 1000  # shells 15, ~317, ~616, ~923: b > 1000 left out
    adc = diffusion.adc_loglinear(data[brain], bvals)
    assert 0.5e-3 < np.median(adc) < 3.5e-3  # measured 0.77e-3 mm^2/s
    assert np.mean((adc > 0.2e-3) & (adc < 3.5e-3)) > 0.95


def test_ivim_recovers_the_osipi_reference_signals(shared_data):
    ref = json.loads((shared_data / "physiology" / "ivim" / "generic_brain.json").read_text())
    b = np.asarray(ref["config"]["bvalues"])
    for tissue in ("Gray matter", "White matter"):  # names swapped vs the source: use numbers
        truth = ref[tissue]
        fit = diffusion.ivim_segmented(np.asarray(truth["data"])[None], b)
        # Noise 0.0005 of S0. Measured: D within 0.3%, f within 1.5%, D* within 10%.
        assert fit["D"][0] == pytest.approx(truth["D"], rel=0.02)
        assert fit["f"][0] == pytest.approx(truth["f"], rel=0.05)
        assert fit["Dstar"][0] == pytest.approx(truth["Dp"], rel=0.2)


def test_gradient_count_mismatch_names_the_file(dwi_dir, tmp_path):
    shutil.copy(dwi_dir / "small_64D.nii", tmp_path / "dwi.nii")
    bvals = np.loadtxt(dwi_dir / "small_64D.bval")
    np.savetxt(tmp_path / "dwi.bval", bvals[:-1][None], fmt="%g")
    shutil.copy(dwi_dir / "small_64D.bvec", tmp_path / "dwi.bvec")
    with pytest.raises(SubjectError, match="64 b-values for 65 volumes") as err:
        dwi_session(tmp_path / "dwi.nii", tmp_path / "dwi.bval", tmp_path / "dwi.bvec",
                    tmp_path / "out")  # fmt: skip
    assert str(tmp_path / "dwi.bval") in str(err.value)
    np.savetxt(tmp_path / "dwi.bval", bvals[None], fmt="%g")
    _, bvecs = diffusion.read_gradients(dwi_dir / "small_64D.bval", dwi_dir / "small_64D.bvec")
    np.savetxt(tmp_path / "dwi.bvec", bvecs[:-2].T, fmt="%.6f")  # FSL layout: 3 rows
    with pytest.raises(SubjectError, match="63 b-vectors for 65 volumes") as err:
        dwi_session(tmp_path / "dwi.nii", tmp_path / "dwi.bval", tmp_path / "dwi.bvec",
                    tmp_path / "out")  # fmt: skip
    assert str(tmp_path / "dwi.bvec") in str(err.value)


def test_adc_needs_two_b_values_and_dwi_must_be_4d(tmp_path):
    with pytest.raises(SubjectError, match="at least 2 distinct b-values"):
        diffusion.adc_loglinear(np.ones((5, 3)), np.array([1000.0, 1000.0, 1010.0]))
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(tmp_path / "d.nii"))
    np.savetxt(tmp_path / "d.bval", [[0]])
    with pytest.raises(SubjectError, match="must be 4-D") as err:
        dwi_session(tmp_path / "d.nii", tmp_path / "d.bval", None, tmp_path / "out")
    assert str(tmp_path / "d.nii") in str(err.value)
