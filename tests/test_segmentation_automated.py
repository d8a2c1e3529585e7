"""Segmentation stage: the classical automated method vs reference labels and planted tumours."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.segmentation.automated import (
    AutomatedParams,
    adc_in_mm2_per_s,
    fill_holes_2d,
    robust_z,
    segment_automated,
    segment_automated_details,
)

SEQS = ("t1", "t1ce", "t2", "flair")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two masks (1.0 when both are empty)."""
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else 1.0


def load_case(folder):
    """BraTS-space case -> z-scored sequences within the nonzero brain, brain mask, BraTS labels."""
    raw = {s: np.asarray(nib.load(folder / f"{s}.nii.gz").dataobj).astype(np.float32) for s in SEQS}
    brain = np.zeros(raw["t1"].shape, bool)
    for v in raw.values():
        brain |= v > 0
    images = {}
    for s, v in raw.items():
        vals = v[brain]
        images[s] = np.where(brain, (v - vals.mean()) / vals.std(), 0).astype(np.float32)
    seg = np.asarray(nib.load(folder / "segmentations" / "fusion_simple.nii.gz").dataobj)
    return images, brain, seg


@pytest.mark.parametrize("case", ["TCGA-FG-6692", "TCGA-DU-7294"])
def test_automated_matches_fusion_on_tcga(shared_data, case, record_property):
    folder = shared_data / "mri" / "tcga_lgg_brats_space" / case
    images, brain, seg = load_case(folder)
    t0 = time.perf_counter()
    labels = segment_automated(images, brain, (1.0, 1.0, 1.0), AutomatedParams(), seed=1)
    elapsed = time.perf_counter() - t0
    assert labels.dtype == np.uint8 and labels.shape == seg.shape
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    wt = dice(labels > 0, seg > 0)
    tc = dice(np.isin(labels, (1, 3)), np.isin(seg, (1, 4)))
    et = dice(labels == 3, seg == 4)
    record_property("dice", {"wt": wt, "tc": tc, "et": et, "seconds": elapsed})
    print(f"{case}: WT {wt:.3f} TC {tc:.3f} ET {et:.3f} in {elapsed:.1f} s")
    assert wt >= 0.80
    assert tc >= 0.60
    if (seg == 4).sum() > 1000:
        assert et >= 0.60
    else:
        # Non-enhancing LGG: little or no enhancement may be called.
        assert (labels == 3).sum() < 0.1 * (seg > 0).sum()
    assert elapsed < 60


def test_automated_is_deterministic_and_independent_of_scaling(shared_data):
    folder = shared_data / "mri" / "tcga_lgg_brats_space" / "TCGA-DU-7294"
    images, brain, _ = load_case(folder)
    a = segment_automated(images, brain, (1, 1, 1), seed=3)
    # A linear rescaling of the inputs (another normalisation upstream) must not matter.
    scaled = {s: np.where(brain, 100 + 37 * v, 0) for s, v in images.items()}
    b = segment_automated(scaled, brain, (1, 1, 1), seed=3)
    assert dice(a > 0, b > 0) > 0.99
    assert np.array_equal(a, segment_automated(images, brain, (1, 1, 1), seed=3))


def synthetic_case(rng: np.random.Generator, spacing: float = 2.0):
    """A 2 mm ellipsoidal 'brain' with WM/GM/CSF and a planted tumour (necrosis, rim, oedema)."""
    shape = (80, 96, 72)
    g = np.stack(np.meshgrid(*[np.arange(n) * spacing for n in shape], indexing="ij"), 0)
    c = np.array([n * spacing / 2 for n in shape])[:, None, None, None]
    r = np.sqrt((((g - c) / np.array([70, 85, 62])[:, None, None, None]) ** 2).sum(0))
    brain = r < 1.0
    tissue = np.where(r < 0.55, 1, 2)  # 1 WM, 2 GM
    ventr = np.sqrt((((g - c) / np.array([10, 25, 10])[:, None, None, None]) ** 2).sum(0)) < 1
    tissue[ventr] = 3  # CSF
    tc = np.array([95.0, 120.0, 80.0])[:, None, None, None]
    d = np.sqrt(((g - tc) ** 2).sum(0))
    truth = np.zeros(shape, np.uint8)
    truth[(d < 28) & brain] = 2
    truth[d < 16] = 3
    truth[d < 10] = 1
    # Mean intensities (t1, t1ce, t2, flair) per class: WM, GM, CSF, necrosis, oedema, enhancing.
    means = {
        1: (1.0, 0.9, 0.4, 0.6),
        2: (0.7, 0.65, 0.7, 0.8),
        3: (0.2, 0.2, 1.6, 0.15),
        "n": (0.35, 0.4, 1.4, 1.0),
        "e": (0.55, 0.5, 1.1, 1.35),
        "x": (0.55, 1.5, 0.9, 1.2),
    }
    images = {}
    for k, s in enumerate(SEQS):
        img = np.zeros(shape, np.float32)
        for t in (1, 2, 3):
            img[tissue == t] = means[t][k]
        img[truth == 2] = means["e"][k]
        img[truth == 3] = means["x"][k]
        img[truth == 1] = means["n"][k]
        img += rng.normal(0, 0.05, shape).astype(np.float32)
        images[s] = np.where(brain, img, 0).astype(np.float32)
    return images, brain, truth


def test_automated_recovers_planted_tumour_at_2mm():
    images, brain, truth = synthetic_case(np.random.default_rng(7))
    labels = segment_automated(images, brain, (2.0, 2.0, 2.0), seed=0)
    assert dice(labels > 0, truth > 0) >= 0.90
    assert dice(np.isin(labels, (1, 3)), np.isin(truth, (1, 3))) >= 0.85
    assert dice(labels == 3, truth == 3) >= 0.75
    assert dice(labels == 1, truth == 1) >= 0.70


def test_automated_returns_empty_without_tumour():
    images, brain, truth = synthetic_case(np.random.default_rng(8))
    for s in SEQS:  # paint the tumour over with white matter
        images[s][truth > 0] = np.median(images[s][(truth == 0) & brain & (images[s] > 0)])
    labels = segment_automated(images, brain, (2.0, 2.0, 2.0), seed=0)
    assert labels.sum() * 8 / 1000 < 1.0  # under 1 ml called


def test_robust_z_and_fill_holes_2d():
    x = np.arange(101, dtype=np.float32)
    z = robust_z(x, np.ones(101, bool))
    assert z[50] == 0 and abs(z[75] - 0.6745) < 0.02
    ring = np.zeros((5, 7, 7), bool)
    ring[2, 1:6, 1:6] = True
    ring[2, 2:5, 2:5] = False
    filled = fill_holes_2d(ring)
    assert filled[2, 3, 3] and filled.sum() == 25


def test_params_from_config_rejects_unknown_key():
    assert AutomatedParams.from_config({"seed_high_z": 3.5}).seed_high_z == 3.5
    with pytest.raises(ValueError, match="seed_hihg_z"):
        AutomatedParams.from_config({"seed_hihg_z": 3.5})


def nonenhancing_case(rng: np.random.Generator):
    """The synthetic brain with a non-enhancing tumour: cellular core (restricted ADC) in oedema.

    Core and oedema differ little on T1/T2/FLAIR (as in diffuse glioma); ADC in 1e-6 mm^2/s:
    WM 750, GM 850, CSF 3000, oedema 1550, cellular core 950.
    """
    images, brain, truth = synthetic_case(rng)
    core, edema = np.isin(truth, (1, 3)), truth == 2
    truth = np.where(core, 1, truth).astype(np.uint8)
    # Core: T1 a little darker, T2/FLAIR a little less bright than oedema, no enhancement.
    for s, (c, e) in {"t1": (0.5, 0.55), "t1ce": (0.45, 0.5), "t2": (1.0, 1.1),
                      "flair": (1.25, 1.35)}.items():  # fmt: skip
        images[s][core] = c + rng.normal(0, 0.05, int(core.sum()))
        images[s][edema] = e + rng.normal(0, 0.05, int(edema.sum()))
    adc = np.where(images["t2"] > 1.3, 3000.0, np.where(images["t1"] > 0.85, 750.0, 850.0))
    adc[edema], adc[core] = 1550.0, 950.0
    adc = np.where(brain, adc + rng.normal(0, 80, adc.shape), 0).astype(np.float32)
    return images, adc, brain, truth


def test_nonenhancing_core_from_restricted_adc():
    images, adc, brain, truth = nonenhancing_case(np.random.default_rng(11))
    labels, info = segment_automated_details({**images, "adc": adc}, brain, (2.0, 2.0, 2.0))
    assert info["adc_available"] and info["core_method"] == "adc_restricted"
    assert dice(labels > 0, truth > 0) >= 0.85
    assert dice(np.isin(labels, (1, 3)), truth == 1) >= 0.75
    assert (labels == 3).sum() == 0
    # The ADC unit does not matter (mm^2/s and 1e-3 mm^2/s give the same labels).
    same = segment_automated({**images, "adc": adc * 1e-6}, brain, (2.0, 2.0, 2.0))
    assert np.array_equal(same, labels)


def test_missing_or_implausible_adc_falls_back_to_t1_t2_core():
    images, adc, brain, truth = nonenhancing_case(np.random.default_rng(12))
    without, info = segment_automated_details(images, brain, (2.0, 2.0, 2.0))
    assert not info["adc_available"] and info["core_method"] == "t1_t2_mixture"
    assert dice(without > 0, truth > 0) >= 0.85  # whole tumour does not need ADC
    bogus, info = segment_automated_details({**images, "adc": adc * 1e3}, brain, (2.0, 2.0, 2.0))
    assert info["core_method"].endswith("(adc unusable)")
    assert np.array_equal(bogus, without)


def test_adc_unit_inference():
    normal = np.ones(1000, bool)
    for unit in (1.0, 1e3, 1e6):
        out = adc_in_mm2_per_s(np.full(1000, 0.8e-3 * unit, np.float32), normal)
        assert out is not None and np.allclose(out, 0.8e-3)
    assert adc_in_mm2_per_s(np.full(1000, 5e4, np.float32), normal) is None


def test_enhancing_tumour_ignores_adc():
    images, brain, truth = synthetic_case(np.random.default_rng(7))
    adc = np.where(brain, 800.0, 0).astype(np.float32)  # restricted everywhere: must not matter
    a = segment_automated(images, brain, (2.0, 2.0, 2.0), seed=0)
    b, info = segment_automated_details({**images, "adc": adc}, brain, (2.0, 2.0, 2.0), seed=0)
    assert info["core_method"] == "enhancement" and np.array_equal(a, b)


def test_segment_tumor_records_core_method(tmp_path):
    import json

    from radiogenomics.segmentation import segment_tumor

    images, adc, brain, _ = nonenhancing_case(np.random.default_rng(13))
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    for s, v in {**images, "adc": adc, "brain_mask": brain.astype(np.uint8)}.items():
        nib.save(nib.Nifti1Image(v, aff), tmp_path / f"{s}.nii.gz")
    seqs = {s: f"{s}.nii.gz" for s in SEQS}
    for name, extra in (("with", {"adc": "adc.nii.gz"}), ("without", {})):
        manifest = tmp_path / f"manifest_{name}.json"
        manifest.write_text(json.dumps({"sequences": seqs | extra, "reference": "t1ce"}))
        meta = tmp_path / f"{name}.json"
        segment_tumor("automated", manifest, tmp_path / "brain_mask.nii.gz",
                      tmp_path / f"{name}.nii.gz", meta_path=meta)  # fmt: skip
        info = json.loads(meta.read_text())
        assert info["method"] == "automated" and info["adc_available"] == (name == "with")
        assert info["core_method"] == ("adc_restricted" if name == "with" else "t1_t2_mixture")
