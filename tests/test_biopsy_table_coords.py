"""Biopsy stage: table validation (rows refused with file/row/column) and coordinate mapping
(scanner RAS <-> voxel, LPS/RAS storage, ANTs rigid transforms checked against ANTs itself)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from radiogenomics.biopsy.coords import (
    itk_rigid_to_ras,
    reference_to_sequence,
    sample_to_prep_voxel,
    sample_to_reference_world,
    sequence_to_reference,
    session_geometry,
    voxel_to_world,
    world_to_voxel,
)
from radiogenomics.biopsy.table import read_biopsy_table
from radiogenomics.errors import ConfigError, SubjectError
from radiogenomics.imaging.common import to_ants
from radiogenomics.imaging.reorient import to_ras
from radiogenomics.io import save_nifti, write_json

HEADER = "subject\tsession\tsample_id\tx\ty\tz\tspace\tsequence\tegfr_amplification\n"


def _table(tmp_path: Path, rows: str, header: str = HEADER, name: str = "biopsies.tsv") -> Path:
    path = tmp_path / name
    path.write_text(header + rows)
    return path


def test_good_table_typed_and_prefixes_stripped(tmp_path: Path) -> None:
    path = _table(
        tmp_path,
        "sub-P1\tses-01\tB1\t10.5\t-3\t22\tscanner_ras\t\tamplified\n"
        "P1\t01\tB2\t40\t51\t33\tvoxel\tT1CE\t\n"
        "P2\t01\tB1\t0\t0\t0\tscanner_ras\tflair\tnot_amplified\n",
    )
    t = read_biopsy_table(path)
    assert t.index.tolist() == [2, 3, 4]
    assert t["subject"].tolist() == ["P1", "P1", "P2"]
    assert t["session"].tolist() == ["01", "01", "01"]
    assert t["sequence"].tolist() == ["", "t1ce", "flair"]
    assert t["x"].tolist() == [10.5, 40.0, 0.0]
    assert t["egfr_amplification"].iloc[0] == "amplified"
    assert pd.isna(t["egfr_amplification"].iloc[1])
    # CSV works the same way.
    csv = _table(tmp_path, "P1,01,B1,1,2,3,scanner_ras,,amplified\n",
                 header=HEADER.replace("\t", ","), name="b.csv")  # fmt: skip
    assert read_biopsy_table(csv)["z"].iloc[0] == 3.0


def test_bad_rows_refused_with_file_row_and_column(tmp_path: Path) -> None:
    path = _table(
        tmp_path,
        "P1\t01\tB1\t1\t2\t3\tscanner_ras\t\tamplified\n"  # row 2: fine
        "P1\t01\tB1\t1\t2\t3\tscanner_ras\t\tamplified\n"  # row 3: duplicate
        "\t01\tB3\t1\t2\t3\tscanner_ras\t\t\n"  # row 4: blank subject
        "P1\t01\tB4\tabc\t2\t3\tscanner_ras\t\t\n"  # row 5: x not a number
        "P1\t01\tB5\t1\t2\t3\tmni\t\t\n"  # row 6: unknown space
        "P1\t01\tB6\t1\t2\t3\tvoxel\t\t\n"  # row 7: voxel without sequence
        "P1\t01\tB7\t-4\t2\t3\tvoxel\tt1ce\t\n"  # row 8: negative voxel index
        "P1\t01\tB8\t1\t2\t3\tscanner_ras\t\tyes\n"  # row 9: bad marker value
        "P9\t01\tB9\t1\t2\t3\tscanner_ras\t\t\n",  # row 10: unknown session
    )
    with pytest.raises(ConfigError) as err:
        read_biopsy_table(path, known_sessions=[("P1", "01")])
    msg = str(err.value)
    assert str(path) in msg and "9 problem(s)" in msg
    for expected in (
        "row 3, column 'sample_id', value 'B1': duplicate sample (first at row 2)",
        "row 4, column 'subject'",
        "row 5, column 'x', value 'abc'",
        "row 6, column 'space', value 'mni'",
        "row 7, column 'sequence'",
        "row 8, column 'x'",
        "row 9, column 'egfr_amplification', value 'yes'",
        "row 10, column 'session', value 'P9/01'",
    ):
        assert expected in msg, expected
    assert "row 2," not in msg


def test_missing_columns_and_empty_files(tmp_path: Path) -> None:
    path = _table(tmp_path, "P1\t01\t1\t2\t3\n", header="subject\tsession\tx\ty\tz\n")
    with pytest.raises(ConfigError, match=r"column 'sample_id'.*required column missing"):
        read_biopsy_table(path)
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        read_biopsy_table(tmp_path / "empty.tsv")
    with pytest.raises(ConfigError, match="not found"):
        read_biopsy_table(tmp_path / "nope.tsv")


def test_scanner_ras_voxel_round_trip_oblique() -> None:
    rng = np.random.default_rng(0)
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.9, 1.1, 3.0])
    affine[:3, 3] = [-91.0, 12.5, 40.0]
    ijk = rng.uniform(0, 60, (50, 3))
    world = voxel_to_world(ijk, affine)
    np.testing.assert_allclose(world_to_voxel(world, affine), ijk, atol=1e-9)
    # The voxel centre (2, 3, 4) sits at affine @ (2, 3, 4, 1).
    np.testing.assert_allclose(voxel_to_world([2, 3, 4], affine)[0], (affine @ [2, 3, 4, 1])[:3])


def test_lps_stored_image_maps_to_the_same_tissue_after_ras_reorientation() -> None:
    """A voxel of an LPS-stored image and of its RAS reorientation share one world point."""
    data = np.zeros((20, 22, 18), np.float32)
    data[4, 15, 9] = 1.0
    lps = np.diag([-1.5, -1.5, 2.5, 1.0])
    lps[:3, 3] = [30.0, 40.0, -20.0]
    img = nib.Nifti1Image(data, lps)
    ras = to_ras(img)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    world = voxel_to_world([4, 15, 9], img.affine)
    ijk = np.rint(world_to_voxel(world, ras.affine)[0]).astype(int)
    assert np.asarray(ras.dataobj)[tuple(ijk)] == 1.0
    # RAS x of the LPS voxel: x = 30 - 1.5 * 4.
    assert world[0, 0] == pytest.approx(24.0)


def _write_rigid(path: Path, angles_deg, translation, centre) -> None:
    """An ITK affine .mat written by ANTs itself (rotation about `centre` (LPS) + translation)."""
    import ants

    a, b, c = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=3,
        matrix=rz @ ry @ rx,
        translation=list(translation),
        center=list(centre),
    )
    ants.write_transform(tx, str(path))


def test_rigid_transform_matches_ants_resampling(tmp_path: Path) -> None:
    """A blob in a moved sequence, resampled by ANTs onto the reference grid through the .mat,
    lands where sequence_to_reference puts the blob's point (the direction convention)."""
    import ants

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-40.0, -44.0, -36.0]
    shape = (40, 44, 36)
    ref = nib.Nifti1Image(np.zeros(shape, np.float32), affine)
    seq_data = np.zeros(shape, np.float32)
    blob_ijk = np.array([25.0, 14.0, 20.0])
    seq_data[tuple(blob_ijk.astype(int))] = 1000.0
    seq_data = ndimage.gaussian_filter(seq_data, 1.5)
    seq = nib.Nifti1Image(seq_data, affine)
    xfm = tmp_path / "t2_to_t1ce.mat"
    _write_rigid(xfm, (6.0, -4.0, 9.0), (3.0, -5.0, 2.5), (2.0, -4.0, 10.0))
    moved = ants.apply_transforms(
        fixed=to_ants(ref), moving=to_ants(seq), transformlist=[str(xfm)], interpolator="linear"
    ).numpy()
    found = np.array(ndimage.center_of_mass(np.clip(moved, 0, None)))
    expected_world = sequence_to_reference(voxel_to_world(blob_ijk, affine), xfm)
    np.testing.assert_allclose(world_to_voxel(expected_world, affine)[0], found, atol=0.05)
    # Round trip and the 4x4 form agree.
    p = np.array([[10.0, -20.0, 5.0], [-3.0, 7.0, 30.0]])
    np.testing.assert_allclose(reference_to_sequence(sequence_to_reference(p, xfm), xfm), p)
    m = itk_rigid_to_ras(xfm)
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6)


def test_sample_to_prep_voxel_through_session_files(tmp_path: Path) -> None:
    """Voxel coordinates of a moved sequence's intake image reach the prep grid through the
    coreg manifest's transform; scanner RAS without a sequence is the reference world."""
    sd = tmp_path / "results" / "c" / "sub-P1" / "ses-01"
    prep_aff = np.diag([1.0, 1.0, 1.0, 1.0])
    prep_aff[:3, 3] = [-50.0, -60.0, -40.0]
    save_nifti(nib.Nifti1Image(np.zeros((100, 120, 80), np.float32), prep_aff),
               sd / "prep" / "t1ce.nii.gz")  # fmt: skip
    anat_aff = np.diag([0.8, 0.8, 3.0, 1.0])
    anat_aff[:3, 3] = [-45.0, -55.0, -38.0]
    save_nifti(nib.Nifti1Image(np.zeros((120, 140, 26), np.int16), anat_aff),
               sd / "anat" / "flair.nii.gz")  # fmt: skip
    (sd / "prep" / "xfm").mkdir(parents=True)
    xfm = sd / "prep" / "xfm" / "flair_to_t1ce.mat"
    _write_rigid(xfm, (0.0, 0.0, 12.0), (4.0, 1.0, -2.0), (0.0, 0.0, 0.0))
    write_json(
        {"reference": "t1ce", "transforms": {"flair": "../xfm/flair_to_t1ce.mat"}},
        sd / "prep" / "coreg" / "manifest.json",
    )
    geo = session_geometry(sd)
    assert geo.reference == "t1ce" and geo.prep_shape == (100, 120, 80)
    ijk = np.array([60.0, 70.0, 12.0])
    seq_world = voxel_to_world(ijk, anat_aff)
    expected = world_to_voxel(sequence_to_reference(seq_world, xfm), prep_aff)[0]
    np.testing.assert_allclose(sample_to_prep_voxel(ijk, "voxel", "flair", geo), expected)
    # The same tissue given as scanner RAS of the flair: same prep voxel.
    np.testing.assert_allclose(
        sample_to_prep_voxel(seq_world[0], "scanner_ras", "flair", geo), expected
    )
    # Reference world: only the prep affine applies.
    np.testing.assert_allclose(
        sample_to_reference_world([1.0, 2.0, 3.0], "scanner_ras", "", geo), [1.0, 2.0, 3.0]
    )
    with pytest.raises(SubjectError, match="no co-registration transform for sequence 't2'"):
        sample_to_prep_voxel([1.0, 2.0, 3.0], "scanner_ras", "t2", geo)
    with pytest.raises(SubjectError, match="intake image is missing"):
        sample_to_prep_voxel([1.0, 2.0, 3.0], "voxel", "t1ce", geo)
