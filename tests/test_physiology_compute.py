"""The compute_maps step: intake's raw DSC/DWI -> maps/ + maps/manifest.json (planted truth)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from radiogenomics.demo import acquisitions as acq
from radiogenomics.errors import SubjectError
from radiogenomics.intake.raw import write_acquisition
from radiogenomics.io import save_nifti, write_json
from radiogenomics.paths import stale_after
from radiogenomics.physiology.compute import compute_session_maps


@pytest.fixture(scope="module")
def brain():
    return acq.synthetic_brain(shape=(64, 64, 12), seed=1)


def _session(root: Path, b: dict, *, provided_rcbv: bool = False, dsc_volumes: int = 60) -> Path:
    """An intake folder as intake writes it: T1ce, raw DSC (TR/TE sidecar), DWI (b 0/500/1000)."""
    anat = root / "sub-01" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    aff = b["affine"]
    save_nifti(nib.Nifti1Image(b["s0"].astype(np.float32), aff), anat / "t1ce.nii.gz")
    protocol = acq.DscProtocol(
        max_rotation_deg=0.0, max_translation_mm=0.0, n_timepoints=dsc_volumes
    )
    sim = acq.simulate_dsc(b["s0"], b["rcbv"], aff, k2=b["k2"], artery=b["artery"],
                           protocol=protocol, seed=3)  # fmt: skip
    dwi = acq.simulate_dwi(b["s0"], b["adc"], seed=3)
    side = {"RepetitionTime": protocol.tr, "EchoTime": protocol.te}
    entries = {
        "dsc": write_acquisition("dsc", [nib.Nifti1Image(sim["series"], aff)], side, None, anat),
        "dwi": write_acquisition(
            "dwi", [nib.Nifti1Image(dwi["series"], aff)], {}, (dwi["bvals"], dwi["bvecs"].T), anat
        ),
    }
    sequences = {"t1ce": "t1ce.nii.gz"}
    if provided_rcbv:
        save_nifti(nib.Nifti1Image(b["rcbv"].astype(np.float32), aff), anat / "rcbv.nii.gz")
        sequences["rcbv"] = "rcbv.nii.gz"
    manifest = {"cohort": "c", "subject": "01", "session": "01", "sequences": sequences}
    manifest |= {"missing": {"adc": "not provided by the cohort"}, "acquisitions": entries}
    write_json(manifest, anat / "manifest.json")
    return anat / "manifest.json"


@pytest.fixture(scope="module")
def computed(brain, tmp_path_factory):
    root = tmp_path_factory.mktemp("c")
    man = _session(root, brain)
    out = man.parent.parent / "maps" / "manifest.json"
    result = compute_session_maps(man, out, motion_correction=False, seed=0)
    return result, out.parent


def test_computed_maps_join_the_chain_and_match_planted_truth(brain, computed):
    manifest, maps = computed
    b = brain
    assert manifest["sequences"] == {
        "adc": "adc.nii.gz", "rcbv": "rcbv.nii.gz", "t1ce": "../anat/t1ce.nii.gz"
    }  # fmt: skip
    assert (maps / "../anat/t1ce.nii.gz").exists()
    assert manifest["missing"] == {}
    assert manifest["map_sources"] == {"adc": "computed from dwi", "rcbv": "computed from dsc"}
    rcbv = nib.load(maps / "rcbv.nii.gz").get_fdata()
    inside = b["brain"] & ~ndimage.binary_dilation(b["artery"], iterations=2)
    r = float(np.corrcoef(rcbv[inside], b["rcbv"][inside])[0, 1])
    assert r >= 0.95, r
    # As the normalisation step does: divide by the WM median; then the lesion median is planted's.
    rel = rcbv / np.median(rcbv[b["wm"]])
    lesion = float(np.median(rel[b["lesion"]]) / np.median(b["rcbv"][b["lesion"]]) - 1)
    assert abs(lesion) < 0.10, lesion
    adc = nib.load(maps / "adc.nii.gz").get_fdata()
    err = float(np.median(adc[b["brain"]]) / np.median(b["adc"][b["brain"]]) - 1)
    assert abs(err) < 0.03, err
    side = json.loads((maps / "rcbv.json").read_text())
    assert side["source"] == "computed from dsc" and side["reference_median"] > 0
    assert "contralateral" in side["note"] and side["aif"]["source"] == "automatic"
    print(f"rcbv r={r:.3f} lesion median {lesion:+.1%} adc median {err:+.2%}")


def test_provided_map_wins_unless_config_says_computed(brain, tmp_path):
    man = _session(tmp_path / "a", brain, provided_rcbv=True)
    out = man.parent.parent / "maps" / "manifest.json"
    m = compute_session_maps(man, out, motion_correction=False)
    assert m["sequences"]["rcbv"] == "../anat/rcbv.nii.gz"
    assert m["map_sources"]["rcbv"].startswith("provided (raw dsc present")
    assert not (out.parent / "cbv.nii.gz").exists()  # DSC computation skipped
    m = compute_session_maps(man, out, motion_correction=False, prefer="computed")
    assert m["sequences"]["rcbv"] == "rcbv.nii.gz"
    assert "replaced" in m["map_sources"]["rcbv"]


def test_session_without_raw_data_passes_through(tmp_path, brain):
    anat = tmp_path / "sub-01" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    save_nifti(nib.Nifti1Image(brain["s0"].astype(np.float32), brain["affine"]),
               anat / "t1ce.nii.gz")  # fmt: skip
    manifest = {"cohort": "c", "subject": "01", "session": "01", "missing": {}}
    write_json(manifest | {"sequences": {"t1ce": "t1ce.nii.gz"}}, anat / "manifest.json")
    m = compute_session_maps(anat / "manifest.json", tmp_path / "sub-01/ses-01/maps/manifest.json")
    assert m["sequences"] == {"t1ce": "../anat/t1ce.nii.gz"} and m["computed"] == {}


def test_dsc_without_bolus_fails_the_session_naming_the_file(tmp_path, brain):
    b = dict(brain)
    man = _session(tmp_path, b | {"rcbv": np.zeros_like(b["rcbv"]),
                                  "artery": np.zeros_like(b["artery"])})  # fmt: skip
    with pytest.raises(SubjectError) as err:
        compute_session_maps(man, man.parent.parent / "maps" / "manifest.json",
                             motion_correction=False)  # fmt: skip
    assert "no detectable bolus" in str(err.value) and "anat/dsc.nii.gz" in str(err.value)


def test_maps_folder_is_stale_after_intake(tmp_path):
    sd = tmp_path / "results" / "c" / "sub-01" / "ses-01"
    assert sd / "maps" in stale_after(sd, "intake_subject")


def test_rcbf_is_computed_beside_rcbv(brain, tmp_path):
    """Constant planted MTT: relative CBF follows the planted rCBV; its JSON names the reference."""
    man = _session(tmp_path, brain)
    out = man.parent.parent / "maps" / "manifest.json"
    m = compute_session_maps(man, out, optional_maps=("adc", "rcbv", "rcbf"),
                             motion_correction=False)  # fmt: skip
    assert m["map_sources"]["rcbf"] == "computed from dsc"
    rcbf = nib.load(out.parent / "rcbf.nii.gz").get_fdata()
    cbf = nib.load(out.parent / "cbf.nii.gz").get_fdata()
    side = json.loads((out.parent / "rcbf.json").read_text())
    assert np.allclose(rcbf[cbf > 0] * side["reference_median"], cbf[cbf > 0], rtol=1e-5)
    inside = brain["brain"] & ~ndimage.binary_dilation(brain["artery"], iterations=2)
    r = float(np.corrcoef(rcbf[inside], brain["rcbv"][inside])[0, 1])
    rel = rcbf / np.median(rcbf[brain["wm"]])
    lesion = float(np.median(rel[brain["lesion"]]) / np.median(brain["rcbv"][brain["lesion"]]) - 1)
    print(f"rcbf r={r:.3f} lesion median {lesion:+.1%}")
    assert r >= 0.85, r
    assert abs(lesion) < 0.15, lesion


def test_dce_maps_from_a_raw_series(brain, tmp_path):
    """SPGR series from planted Ktrans/ve with the population AIF and the assumed T10 (what the
    map step assumes): the session's ktrans/ve recover them; the JSON says what was assumed."""
    from radiogenomics.physiology import dce, dsc

    b = brain
    n, dt, onset, tr, flip = 60, 3.0, 6, 0.005, 15.0
    t = np.arange(n) * dt
    cp = dsc.population_aif(n, dt, onset) / (1 - 0.42)
    ktrans = np.where(b["lesion"], 0.15, np.where(b["brain"], 0.02, 0.0))  # 1/min
    ve = np.where(b["lesion"], 0.35, 0.2)
    series = np.zeros(b["brain"].shape + (n,), np.float32)
    for k, v in {(kt, vv) for kt, vv in zip(ktrans[b["brain"]], ve[b["brain"]], strict=True)}:
        sel = b["brain"] & (ktrans == k) & (ve == v)
        c = dce.tofts_forward(t, cp, k, k / v)
        e = np.exp(-tr * (1 / dce.T10_ASSUMED_S + dce.R1_GD_3T * c))
        series[sel] = 1000 * (1 - e) / (1 - np.cos(np.deg2rad(flip)) * e)
    anat = tmp_path / "sub-01" / "ses-01" / "anat"
    aff = b["affine"]
    save_nifti(nib.Nifti1Image(b["s0"].astype(np.float32), aff), anat / "t1ce.nii.gz")
    side = {"RepetitionTime": tr, "FlipAngle": flip, "TemporalResolution": dt}
    entry = write_acquisition("dce", [nib.Nifti1Image(series, aff)], side, None, anat)
    manifest = {"cohort": "c", "subject": "01", "session": "01", "missing": {},
                "sequences": {"t1ce": "t1ce.nii.gz"}, "acquisitions": {"dce": entry}}  # fmt: skip
    write_json(manifest, anat / "manifest.json")
    out = tmp_path / "sub-01" / "ses-01" / "maps" / "manifest.json"
    m = compute_session_maps(anat / "manifest.json", out, optional_maps=("ktrans", "ve"))
    assert m["map_sources"] == {"ktrans": "computed from dce", "ve": "computed from dce"}
    assert m["sequences"]["ktrans"] == "ktrans.nii.gz"
    kt = nib.load(out.parent / "ktrans.nii.gz").get_fdata()
    vv = nib.load(out.parent / "ve.nii.gz").get_fdata()
    k_err = np.median(kt[b["lesion"]]) / 0.15 - 1
    v_err = np.median(vv[b["lesion"]]) / 0.35 - 1
    print(f"ktrans lesion median {k_err:+.1%}, ve {v_err:+.1%}")
    assert abs(k_err) < 0.05 and abs(v_err) < 0.05
    meta = json.loads((out.parent / "ktrans.json").read_text())
    assert any("T10" in w for w in meta["warnings"]) and meta["source"] == "computed from dce"
