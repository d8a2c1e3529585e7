"""Intake of raw 4-D acquisitions (DSC, DWI): layouts, sidecar timing, b-values, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from radiogenomics.errors import SubjectError
from radiogenomics.intake.dicom import Series, acquisition_kind
from radiogenomics.intake.discover import build_subject_table
from radiogenomics.intake.raw import reorient_bvecs
from radiogenomics.intake.session import intake_session

SEQS = {
    "structural": ["t1", "t1ce", "t2", "flair"],
    "required": ["t1", "t1ce", "t2", "flair"],
    "optional_maps": ["adc", "rcbv"],
    "raw_acquisitions": ["dsc", "dwi", "dti", "dce"],
}
SRC = ("mri", "tcga_lgg_brats_space", "TCGA-DU-7294")


def _dsc(path: Path, volumes: int = 40, *, flip_x: bool = True) -> np.ndarray:
    """A small LPS-oriented 4-D series (x flipped) with a BIDS sidecar; returns its data."""
    rng = np.random.default_rng(0)
    data = (100 + rng.normal(0, 1, (6, 5, 4, volumes))).astype(np.float32)
    affine = np.diag([-2.0 if flip_x else 2.0, 2.0, 3.0, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 1.5
    nib.save(img, path)
    sidecar = {"RepetitionTime": 1.5, "EchoTime": 0.03, "PatientName": "FAKEPHI^JOHN"}
    Path(str(path).replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    return data


def _dwi(shared_data: Path, dest: Path) -> Path:
    """The real dipy small_64D DWI (65 volumes, b 0/1000) with its .bval/.bvec beside it."""
    src = shared_data / "physiology" / "dwi"
    img = nib.load(src / "small_64D.nii")
    nib.save(img, dest / "dwi.nii.gz")
    shutil.copy(src / "small_64D.bval", dest / "dwi.bval")
    shutil.copy(src / "small_64D.bvec", dest / "dwi.bvec")
    return dest / "dwi.nii.gz"


def _table_cohort(tmp_path: Path, shared_data: Path, extra: dict[str, Path]) -> dict:
    src = shared_data.joinpath(*SRC)
    rows = [
        {"subject": "S1", "session": "01", "sequence": s, "path": str(src / f"{s}.nii.gz")}
        for s in SEQS["required"]
    ] + [
        {"subject": "S1", "session": "01", "sequence": k, "path": str(p)} for k, p in extra.items()
    ]
    table = tmp_path / "images.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    return {
        "name": "tab",
        "layout": "nifti-table",
        "table": str(table),
        "role": "discovery",
        "segmentation": "automated",
        "label_convention": "brats",
        "skull_stripped": True,
        "session": "01",
    }


def _run(cohort: dict, out: Path) -> tuple[dict, Path]:
    row = build_subject_table([cohort]).iloc[0].to_dict()
    anat = out / "anat"
    return intake_session(cohort, row, SEQS, anat), anat


def test_nifti_table_dsc_and_dwi_keep_timing_and_gradients(shared_data, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    dsc = _dsc(raw / "dsc.nii.gz")
    dwi = _dwi(shared_data, raw)
    manifest, anat = _run(
        _table_cohort(tmp_path, shared_data, {"dsc": raw / "dsc.nii.gz", "dwi": dwi}),
        tmp_path / "out",
    )
    acq = manifest["acquisitions"]
    assert sorted(acq) == ["dsc", "dwi"]
    assert acq["dsc"]["volumes"] == 40 and acq["dsc"]["shape"] == [6, 5, 4, 40]
    # Reoriented to RAS: x was flipped, so the data come back reversed along x, values exact.
    out = nib.load(anat / "dsc.nii.gz")
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), dsc[::-1])
    side = json.loads((anat / "dsc.json").read_text())
    assert side["RepetitionTime"] == 1.5 and side["EchoTime"] == 0.03
    assert "PatientName" not in side and "FAKEPHI" not in json.dumps(side)
    # DWI: 65 volumes, b-values kept exactly, vectors unit-length and in the RAS axes.
    assert acq["dwi"]["volumes"] == 65 and acq["dwi"]["b_values"] == [0, 1000]
    src_b = np.loadtxt(raw / "dwi.bval")
    np.testing.assert_allclose(np.loadtxt(anat / "dwi.bval"), src_b)
    # The source has N x 3 vectors with NaN for the b0 volume: 3 x N, b0 zeroed.
    src_v = np.nan_to_num(np.loadtxt(raw / "dwi.bvec").T)
    expect = reorient_bvecs(src_v, nib.load(dwi).affine)
    got = np.loadtxt(anat / "dwi.bvec")
    np.testing.assert_allclose(got, expect, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(got[:, 1:], axis=0), 1.0, atol=1e-6)
    assert np.all(got[:, 0] == 0)


def test_reorient_bvecs_flips_and_permutes_like_the_image():
    # Voxel axes (j, -i, k): world x follows voxel axis 1, world y follows voxel axis 0 flipped.
    affine = np.array([[0, 2.0, 0, 0], [-2.0, 0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    v = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    out = reorient_bvecs(v, affine)
    np.testing.assert_array_equal(out, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])


def test_bids_perf_and_dwi(shared_data, tmp_path):
    ses = tmp_path / "bids" / "sub-01" / "ses-02"
    (ses / "anat").mkdir(parents=True)
    (ses / "perf").mkdir()
    (ses / "dwi").mkdir()
    src = shared_data.joinpath(*SRC)
    for seq, suffix in (("t1", "T1w"), ("t1ce", "ce-gd_T1w"), ("t2", "T2w"), ("flair", "FLAIR")):
        shutil.copy(src / f"{seq}.nii.gz", ses / "anat" / f"sub-01_ses-02_{suffix}.nii.gz")
    _dsc(ses / "perf" / "sub-01_ses-02_dsc.nii.gz", volumes=30)
    dwi = _dwi(shared_data, ses / "dwi")
    for ext in (".nii.gz", ".bval", ".bvec"):
        (ses / "dwi" / f"dwi{ext}").rename(ses / "dwi" / f"sub-01_ses-02_dwi{ext}")
    assert not dwi.exists()
    cohort = {
        "name": "bids",
        "layout": "bids",
        "path": str(tmp_path / "bids"),
        "role": "discovery",
        "segmentation": "automated",
        "label_convention": "brats",
        "skull_stripped": True,
        "session": "01",
        "bids_suffixes": {
            "t1": "T1w",
            "t1ce": "ce-gd_T1w",
            "t2": "T2w",
            "flair": "FLAIR",
            "dsc": "dsc",
            "dwi": "dwi",
        },
    }
    manifest, anat = _run(cohort, tmp_path / "out")
    assert manifest["session"] == "02"
    assert manifest["acquisitions"]["dsc"]["volumes"] == 30
    assert manifest["acquisitions"]["dwi"]["b_values"] == [0, 1000]
    assert json.loads((anat / "dsc.json").read_text())["RepetitionTime"] == 1.5
    assert (anat / "dwi.bval").exists() and (anat / "dwi.bvec").exists()


def _expect_error(cohort: dict, tmp_path: Path, words: list[str], file: Path) -> None:
    with pytest.raises(SubjectError) as err:
        _run(cohort, tmp_path / "out")
    msg = str(err.value)
    assert str(file) in msg, msg
    for w in words:
        assert w in msg, msg


def test_dsc_with_too_few_time_points_names_the_file(shared_data, tmp_path):
    _dsc(tmp_path / "dsc.nii.gz", volumes=8)
    cohort = _table_cohort(tmp_path, shared_data, {"dsc": tmp_path / "dsc.nii.gz"})
    _expect_error(cohort, tmp_path, ["8 volume", "20"], tmp_path / "dsc.nii.gz")


def test_bval_count_mismatch_names_the_bval_file(shared_data, tmp_path):
    dwi = _dwi(shared_data, tmp_path)
    bvals = np.loadtxt(tmp_path / "dwi.bval")[:-1]
    (tmp_path / "dwi.bval").write_text(" ".join(f"{b:g}" for b in bvals))
    cohort = _table_cohort(tmp_path, shared_data, {"dwi": dwi})
    _expect_error(cohort, tmp_path, ["64 b-values", "65 volumes"], tmp_path / "dwi.bval")


def test_bvec_count_mismatch_names_the_bvec_file(shared_data, tmp_path):
    dwi = _dwi(shared_data, tmp_path)
    bvecs = np.loadtxt(tmp_path / "dwi.bvec")[:, :-2]
    np.savetxt(tmp_path / "dwi.bvec", bvecs)
    cohort = _table_cohort(tmp_path, shared_data, {"dwi": dwi})
    _expect_error(cohort, tmp_path, ["b-vectors", "65 volumes"], tmp_path / "dwi.bvec")


def test_3d_image_given_as_dsc_names_the_file(shared_data, tmp_path):
    flair = shared_data.joinpath(*SRC) / "flair.nii.gz"
    cohort = _table_cohort(tmp_path, shared_data, {"dsc": flair})
    _expect_error(cohort, tmp_path, ["dsc", "4-D"], flair)


def test_4d_image_given_as_structural_names_the_file(shared_data, tmp_path):
    _dsc(tmp_path / "dsc.nii.gz")
    cohort = _table_cohort(tmp_path, shared_data, {})
    table = pd.read_csv(cohort["table"], sep="\t")
    table.loc[table.sequence == "flair", "path"] = str(tmp_path / "dsc.nii.gz")
    table.to_csv(cohort["table"], sep="\t", index=False)
    _expect_error(cohort, tmp_path, ["flair", "3-D"], tmp_path / "dsc.nii.gz")


def _series(n_pos: int, n_vol: int, **tags) -> Series:
    s = Series(
        uid="1.2",
        number=7,
        description=tags.pop("description", "ep2d"),
        sop_class="1.2.840.10008.5.1.4.1.1.4",
        modality="MR",
    )
    s.files = [Path(f"IM{i:04d}.dcm") for i in range(n_pos * n_vol)]
    s.positions = {(0.0, 0.0, float(z)) for z in range(n_pos)}
    for key, value in tags.items():
        setattr(s, key, value)
    return s


def test_dicom_raw_kinds_are_recognised_by_tags_not_names():
    # Description says nothing: tags decide.
    dsc = _series(
        20, 50, echo_times={30.0}, repetition_ms=1500.0, scanning="EP", temporal=set(range(50))
    )
    assert acquisition_kind(dsc) == "dsc"
    dwi = _series(20, 4, b_values={0, 500, 1000}, echo_times={90.0}, repetition_ms=6000.0)
    assert acquisition_kind(dwi) == "dwi"
    dce = _series(20, 40, echo_times={2.0}, repetition_ms=5.0, scanning="GR")
    assert acquisition_kind(dce) == "dce"
    # A 3-D series, and a long-TR T2*-weighted series (BOLD-like, TR 3.5 s), are not DSC.
    assert acquisition_kind(_series(20, 1, echo_times={30.0}, repetition_ms=1500.0)) is None
    bold = _series(20, 50, echo_times={30.0}, repetition_ms=3500.0, scanning="EP")
    assert acquisition_kind(bold) is None
    rules = {"dsc": {"include": "PERF", "exclude": "BOLD"}, "dti": {"include": "DTI"}}
    dsc.description = "BOLD resting"
    assert acquisition_kind(dsc, rules) is None
    dwi.description = "DTI 30dir"
    assert acquisition_kind(dwi, rules) == "dti"
    silent = _series(20, 50, description="PERFUSION")
    assert acquisition_kind(silent) is None and acquisition_kind(silent, rules) == "dsc"


def test_dicom_dsc_and_dwi_series_convert_with_timing_and_b_values(tmp_path):
    # Classic multi-slice series as scanners export them (the demo's writer), through dcm2niix.
    from radiogenomics.demo.dicom_export import generate_uid, write_series_4d
    from radiogenomics.intake.dicom import convert_session

    rng = np.random.default_rng(0)
    affine = np.diag([3.5, 3.5, 5.0, 1.0])
    common = {"subject": "X1", "session": "01", "uid_seed": "t", "study_date": "20200101",
              "scanner": {"manufacturer": "GE MEDICAL SYSTEMS", "model": "Signa", "field": 1.5},
              "study_uid": generate_uid(entropy_srcs=["t", "study"]),
              "frame_uid": generate_uid(entropy_srcs=["t", "frame"])}  # fmt: skip
    dsc = (500 + rng.normal(0, 5, (8, 8, 4, 25))).astype(np.float32)
    write_series_4d(dsc, affine, "dsc", tmp_path / "study" / "dsc",
                    repetition_time_ms=1500.0, echo_time_ms=45.0, **common)  # fmt: skip
    bvals = np.array([0.0, 500, 500, 500, 1000, 1000, 1000])
    bvecs = np.vstack([np.zeros(3), np.eye(3), np.eye(3)])
    dwi = 400 * np.exp(-bvals * 1e-3)[None, None, None] + rng.normal(0, 2, (8, 8, 4, 7))
    write_series_4d(dwi.astype(np.float32), affine, "dwi", tmp_path / "study" / "dwi",
                    repetition_time_ms=6000.0, echo_time_ms=80.0, bvals=bvals, bvecs=bvecs,
                    **common)  # fmt: skip
    converted, _ = convert_session(tmp_path / "study", {}, [])
    assert sorted(converted) == ["dsc", "dwi"]
    imgs, meta, gradients = converted["dsc"]
    assert imgs[0].shape == (8, 8, 4, 25) and gradients is None
    assert meta["RepetitionTime"] == pytest.approx(1.5) and meta["EchoTime"] == pytest.approx(0.045)
    imgs, meta, (got_b, got_v) = converted["dwi"]
    assert imgs[0].shape == (8, 8, 4, 7)
    np.testing.assert_allclose(np.sort(got_b), np.sort(bvals))
    assert got_v.shape == (3, 7)
    norms = np.linalg.norm(got_v, axis=0)
    np.testing.assert_allclose(norms[got_b > 0], 1.0, atol=1e-3)
    assert np.all(norms[got_b == 0] == 0)
