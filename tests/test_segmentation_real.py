"""Segmentation stage on real MRI as cohorts bring it: the chain on real variants of real cases.

Each case goes through the chain a skull-stripped cohort runs (radiogenomics.segmentation.realdata:
intake RAS, N4, co-registration, derived mask, z-score, `segment_tumor("automated")`). To keep
the run to a few minutes the 1 mm BraTS-space cases are block-averaged to 2 mm first (what a 2 mm
acquisition of the same head records) and the chain works at resample_mm = 2; expert labels are
brought onto that grid by nearest neighbour. Variants (issue 20 item 4): intensities z-scored
within the brain and over the whole volume, voxel axes stored as P-I-R with a qform 10 mm off the
sform, a 6 mm thick-slice axial FLAIR (boxcar slice profile), and FLAIR + T1c only (z-scored too).
Each must give the Dice of its original within 0.03 (thick slices: see the test).
"""

from __future__ import annotations

import functools

import nibabel as nib
import pytest

from radiogenomics.segmentation.realdata import (
    SEQUENCES,
    block_downsample,
    make_variant,
    region_dice,
    run_case,
    truth_on_grid,
)

pytestmark = [pytest.mark.real, pytest.mark.slow]

HGG = ("brats2018_sample", "Brats18_TCIA02_135_1")  # expert labels, enhancing
LGG = ("tcga_lgg_brats_space", "TCGA-DU-7294")  # fusion labels, no enhancement
TOLERANCE = 0.03


def _files(shared_data, case):
    folder = shared_data / "mri" / case[0] / case[1]
    if case[0] == "brats2018_sample":
        return ({s: folder / f"{case[1]}_{s}.nii.gz" for s in SEQUENCES},
                folder / f"{case[1]}_seg.nii.gz")  # fmt: skip
    return ({s: folder / f"{s}.nii.gz" for s in SEQUENCES},
            folder / "segmentations" / "fusion_simple.nii.gz")  # fmt: skip


@pytest.fixture(scope="module")
def chain(shared_data, tmp_path_factory):
    """chain(case, 'variant[+variant]') -> (Dice per region, run_case result), computed once."""

    @functools.cache
    def run(case, variants):
        files, label_file = _files(shared_data, case)
        images = {s: block_downsample(nib.load(p), 2) for s, p in files.items()}
        for v in variants.split("+"):
            images = make_variant(images, v)
        work = tmp_path_factory.mktemp(f"{case[1]}_{variants}")
        res = run_case(images, work, resample_mm=2.0)
        truth = truth_on_grid(nib.load(label_file), res["affine"], res["labels"].shape)
        return region_dice(res["labels"], truth), res

    return run


def _close(a: dict, b: dict, tol: float = TOLERANCE) -> None:
    for region in ("wt", "tc", "et"):
        assert abs(a[region] - b[region]) <= tol, (region, a, b)


def test_zscored_inputs_segment_like_raw(chain):
    """Z-scored within the brain here; over the whole volume in the non-enhancing case below."""
    base, base_res = chain(HGG, "original")
    dice, res = chain(HGG, "zscore_brain")
    _close(dice, base)
    # Detected as normalised and shifted, not clipped: the derived brain is the same size.
    assert {v["intensities"] for v in res["n4"].values()} == {"normalised"}
    assert abs(res["brain_ml"] - base_res["brain_ml"]) < 0.01 * base_res["brain_ml"]


def test_other_orientation_with_disagreeing_qform(chain):
    base, base_res = chain(HGG, "original")
    dice, res = chain(HGG, "reoriented")
    _close(dice, base)
    assert abs(res["brain_ml"] - base_res["brain_ml"]) < 0.01 * base_res["brain_ml"]


def test_thick_slice_flair(chain):
    """6 mm axial FLAIR slabs, co-registered onto the 2 mm T1c grid: partial volume along z blurs
    the lesion's upper and lower borders, so whole tumour may lose a little more (measured
    -0.03 to -0.06 at 2 mm over runs: the slab-to-T1c registration differs by ITK's threaded
    sums); core and enhancement come from T1c/T1/T2."""
    base, _ = chain(HGG, "original")
    dice, _ = chain(HGG, "thick_flair")
    assert dice["wt"] >= base["wt"] - 0.07 and dice["wt"] >= 0.85, (dice, base)
    _close({**dice, "wt": base["wt"]}, base)


def test_flair_t1ce_only_finds_core_and_enhancement(chain):
    dice, res = chain(HGG, "flair_t1ce")
    meta = res["meta"]
    assert meta["inputs"] == ["t1ce", "flair"]
    assert meta["enhancement_method"] == "t1ce_vs_white_matter"
    assert meta["core_method"] == "enhancement"
    # Issue targets, met on this expert-labelled case (measured at 2 mm: WT 0.96, TC 0.86,
    # ET 0.83); before, every tumour voxel was oedema (TC = ET = 0).
    assert dice["wt"] >= 0.85 and dice["tc"] >= 0.65 and dice["et"] >= 0.65, dice


def test_flair_t1ce_only_non_enhancing_lgg(chain):
    dice, res = chain(LGG, "flair_t1ce")
    assert res["meta"]["core_method"] == "t1ce_flair_mixture"
    # No enhancing truth and none called: Dice 1 by the BraTS empty-truth convention.
    assert dice["et"] == 1.0 and (res["labels"] == 3).sum() == 0
    assert dice["wt"] >= 0.85 and dice["tc"] >= 0.65, dice
    zdice, _ = chain(LGG, "flair_t1ce+zscore_volume")
    _close(zdice, dice)
