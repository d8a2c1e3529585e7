"""Habitats stage tests: synthetic subjects with known habitat fractions (generator + checks).

The generator writes what the habitat rules read (``prep/manifest.json``, ``prep/{seq}.nii.gz``,
``prep/brain_mask.nii.gz``, ``seg/rois/{tumor_core,whole_tumor}.nii.gz``) for a brain with WM,
GM, CSF, oedema and a tumour core made of smooth habitat patches of chosen fractions. ADC is in
physical units with a per-subject scanner gain (so NAWM normalisation matters); rCBV is already a
ratio to WM, as preprocessing delivers it.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from helpers.habitat_subject import make_subject

from radiogenomics.habitats.model import NAMED_HABITATS


def test_generator_realises_requested_fractions(tmp_path: Path) -> None:
    truth = make_subject(tmp_path, "c", "01", "1", (0.5, 0.3, 0.2), seed=1)
    got = [truth[f"{n}__fraction"] for n in NAMED_HABITATS]
    assert np.allclose(got, [0.5, 0.3, 0.2], atol=0.002)
    assert abs(sum(got) - 1) < 1e-9
    img = nib.load(truth["sd"] / "prep" / "adc.nii.gz")
    assert np.allclose(img.affine, truth["affine"])
