"""Segmentation stage: the nnU-Net v2 plug-in, with a tiny model trained here on synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from radiogenomics.errors import ConfigError, SubjectError
from radiogenomics.segmentation import segment_tumor
from radiogenomics.segmentation.nnunet import map_model_labels, validate_nnunet_model_folder

SHAPE = (24, 24, 24)
CHANNELS = ("t1ce", "flair")


def blob_case(rng: np.random.Generator):
    """Two channels and a label image: oedema ball (flair-bright) around an enhancing ball."""
    g = np.indices(SHAPE)
    c = rng.integers(8, 16, size=3)
    d = np.sqrt(sum((g[i] - c[i]) ** 2 for i in range(3)))
    lab = np.zeros(SHAPE, np.uint8)
    lab[d <= 6] = 1
    lab[d <= 3] = 2
    t1ce = (1.0 + 2.0 * (lab == 2) + rng.normal(0, 0.1, SHAPE)).astype(np.float32)
    flair = (1.0 + 1.5 * (lab > 0) + rng.normal(0, 0.1, SHAPE)).astype(np.float32)
    return {"t1ce": t1ce, "flair": flair}, lab


TRAIN = textwrap.dedent(
    """
    import os
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints, plan_experiments, preprocess)
    from nnunetv2.run.run_training import get_trainer_from_args
    torch.manual_seed(0)
    extract_fingerprints([990], num_processes=1, check_dataset_integrity=True,
                         show_progress_bar=False, verbose=False)
    plan_experiments([990])
    preprocess([990], configurations=("3d_fullres",), num_processes=(1,), show_progress_bar=False)
    # 0 augmentation workers keeps training in-process (planning needs a positive count).
    os.environ["nnUNet_n_proc_DA"] = "0"
    trainer = get_trainer_from_args("990", "3d_fullres", "all", device=torch.device("cpu"))
    trainer.num_epochs = 1
    trainer.num_iterations_per_epoch = 2
    trainer.num_val_iterations_per_epoch = 1
    trainer.run_training()
    """
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Train a 1-epoch nnU-Net v2 3d_fullres model on 6 synthetic cases (CPU) in a subprocess."""
    pytest.importorskip("nnunetv2")
    root = tmp_path_factory.mktemp("nnunet")
    raw = root / "raw" / "Dataset990_Tiny"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        chans, lab = blob_case(rng)
        for k, s in enumerate(CHANNELS):
            img = nib.Nifti1Image(chans[s], np.eye(4))
            nib.save(img, raw / "imagesTr" / f"c{i:03d}_{k:04d}.nii.gz")
        nib.save(nib.Nifti1Image(lab, np.eye(4)), raw / "labelsTr" / f"c{i:03d}.nii.gz")
    dataset = {
        "channel_names": {"0": "T1ce", "1": "FLAIR"},
        "labels": {"background": 0, "oedema": 1, "enhancing": 2},
        "numTraining": 6,
        "file_ending": ".nii.gz",
    }
    (raw / "dataset.json").write_text(json.dumps(dataset))
    env = dict(
        os.environ,
        nnUNet_raw=str(root / "raw"),
        nnUNet_preprocessed=str(root / "pre"),
        nnUNet_results=str(root / "res"),
        nnUNet_n_proc_DA="1",
        nnUNet_compile="false",
        OMP_NUM_THREADS="2",
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"nnU-Net tiny training took {time.perf_counter() - t0:.1f} s")
    return root / "res" / "Dataset990_Tiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres"


def test_validate_model_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="not set"):
        validate_nnunet_model_folder(None)
    with pytest.raises(ConfigError, match="does not exist"):
        validate_nnunet_model_folder(tmp_path / "nope")
    with pytest.raises(ConfigError, match="dataset.json"):
        validate_nnunet_model_folder(tmp_path)
    (tmp_path / "dataset.json").write_text('{"channel_names": {"0": "T1", "1": "FLAIR"}}')
    (tmp_path / "plans.json").write_text("{}")
    with pytest.raises(ConfigError, match="no fold_"):
        validate_nnunet_model_folder(tmp_path)
    (tmp_path / "fold_0").mkdir()
    with pytest.raises(ConfigError, match="checkpoint_final.pth missing"):
        validate_nnunet_model_folder(tmp_path)
    (tmp_path / "fold_0" / "checkpoint_final.pth").write_bytes(b"x")
    validate_nnunet_model_folder(tmp_path)
    with pytest.raises(ConfigError, match="model expects 2 channels"):
        validate_nnunet_model_folder(tmp_path, channels=["t1", "t1ce", "t2", "flair"])
    with pytest.raises(ConfigError, match="fold_3"):
        validate_nnunet_model_folder(tmp_path, folds=[3])


def test_map_model_labels():
    out = map_model_labels(np.array([0, 1, 2]), {"1": 2, "2": 3})
    assert out.tolist() == [0, 2, 3] and out.dtype == np.uint8
    with pytest.raises(SubjectError, match=r"labels \[2\]"):
        map_model_labels(np.array([0, 1, 2]), {"1": 2})


@pytest.mark.slow  # training measured at 66 s + 10 s prediction on 2 shared cores
def test_nnunet_segment_tumor_runs_real_model(tiny_model, tmp_path):
    validate_nnunet_model_folder(tiny_model, folds=["all"], channels=list(CHANNELS))
    chans, lab = blob_case(np.random.default_rng(42))
    sd = tmp_path / "results" / "c" / "sub-01" / "ses-01"
    (sd / "prep").mkdir(parents=True)
    affine = np.array([[1.0, 0, 0, -12], [0, 1, 0, -12], [0, 0, 1, 4], [0, 0, 0, 1]])
    for s, v in chans.items():
        nib.save(nib.Nifti1Image(v, affine), sd / "prep" / f"{s}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.uint8), affine), sd / "prep" / "brain_mask.nii.gz")
    (sd / "prep" / "manifest.json").write_text(
        json.dumps({"sequences": {s: f"{s}.nii.gz" for s in CHANNELS}, "reference": "t1ce"})
    )
    cfg = {
        "min_tumor_ml": 0.0,
        "nnunet": {
            "model_folder": str(tiny_model),
            "folds": ["all"],
            "checkpoint": "checkpoint_final.pth",
            "channels": list(CHANNELS),
            "label_map": {"1": 2, "2": 3},
        },
    }
    out = sd / "seg" / "tumor_labels.nii.gz"
    t0 = time.perf_counter()
    labels = segment_tumor(
        "nnunet", sd / "prep/manifest.json", sd / "prep/brain_mask.nii.gz", out, config=cfg
    )
    print(f"nnU-Net prediction took {time.perf_counter() - t0:.1f} s")
    img = nib.load(out)
    assert np.array_equal(img.affine, affine) and img.shape == SHAPE
    assert set(np.unique(labels)) <= {0, 2, 3}  # label_map applied: model 1/2 -> 2/3
    assert np.array_equal(np.asarray(img.dataobj), labels)
