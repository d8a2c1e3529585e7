"""Imaging chain (segmentation): plug-in running a local nnU-Net v2 model on CPU.

The model folder is the trainer output folder of nnU-Net v2
(`.../DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres`) holding `dataset.json`,
`plans.json` and `fold_{k}/{checkpoint}`. Nothing is downloaded. nnunetv2 is an optional
dependency, imported only when a cohort uses `segmentation: nnunet`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import ConfigError, SubjectError

log = logging.getLogger(__name__)
STAGE = "segment_tumor"


def _fold_dirs(folder: Path) -> list[str]:
    """Fold names present in a trainer output folder ('0'..'4', 'all')."""
    return sorted(p.name[len("fold_") :] for p in folder.glob("fold_*") if p.is_dir())


def validate_nnunet_model_folder(
    path: str | Path | None,
    folds: Sequence[int | str] | None = None,
    checkpoint: str = "checkpoint_final.pth",
    channels: Sequence[str] | None = None,
) -> None:
    """Raise ConfigError unless `path` is a usable nnU-Net v2 trainer output folder."""
    if path is None or str(path).strip() == "":
        raise ConfigError(
            "segmentation.nnunet.model_folder is not set but a cohort uses segmentation: nnunet"
        )
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"segmentation.nnunet.model_folder {folder} does not exist")
    for name in ("dataset.json", "plans.json"):
        if not (folder / name).is_file():
            raise ConfigError(
                f"segmentation.nnunet.model_folder {folder} has no {name} "
                "(expected an nnU-Net v2 trainer output folder, e.g. "
                "DatasetXXX/nnUNetTrainer__nnUNetPlans__3d_fullres)"
            )
    try:
        dataset = json.loads((folder / "dataset.json").read_text())
        json.loads((folder / "plans.json").read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"segmentation.nnunet.model_folder {folder}: bad JSON: {exc}") from exc
    present = _fold_dirs(folder)
    wanted = [str(f) for f in folds] if folds else present
    if not wanted:
        raise ConfigError(f"segmentation.nnunet.model_folder {folder} has no fold_* folders")
    for f in wanted:
        ckpt = folder / f"fold_{f}" / checkpoint
        if not ckpt.is_file():
            raise ConfigError(
                f"segmentation.nnunet: checkpoint {ckpt} missing (folds present: {present})"
            )
    n_channels = len(dataset.get("channel_names", dataset.get("modality", {})))
    if channels is not None and n_channels and len(channels) != n_channels:
        raise ConfigError(
            f"segmentation.nnunet.channels lists {len(channels)} sequences {list(channels)} "
            "but the "
            f"model expects {n_channels} channels {dataset.get('channel_names')}"
        )


def map_model_labels(
    seg: np.ndarray, label_map: Mapping[str | int, int], *, file: str | Path | None = None
) -> np.ndarray:
    """Model output values -> pipeline labels 0/1/2/3; values without a mapping raise."""
    lut = {0: 0} | {int(k): int(v) for k, v in label_map.items()}
    found = [int(v) for v in np.unique(seg)]
    bad = [v for v in found if v not in lut]
    if bad:
        raise SubjectError(
            f"nnU-Net output has labels {bad} missing from segmentation.nnunet.label_map "
            f"(found {found})",
            stage=STAGE,
            file=file,
        )
    out = np.zeros(seg.shape, dtype=np.uint8)
    for raw, new in lut.items():
        out[seg == raw] = new
    return out


def predict_nnunet(
    sequence_paths: Sequence[str | Path],
    model_folder: str | Path,
    *,
    folds: Sequence[int | str] | None = None,
    checkpoint: str = "checkpoint_final.pth",
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Run nnU-Net v2 on CPU in-process; return (labels as the model writes them, affine)."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    torch.set_num_threads(max(1, int(threads)))
    folder = Path(model_folder)
    use_folds = tuple(int(f) if str(f).isdigit() else str(f) for f in folds) if folds else None
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        verbose=False,
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(folder), use_folds, checkpoint)
    # The reader the model was planned with fixes the axis order nnU-Net expects.
    rw = predictor.plans_manager.image_reader_writer_class()
    data, props = rw.read_images([str(p) for p in sequence_paths])
    seg = predictor.predict_single_npy_array(data, props, None, None, False)
    ending = predictor.dataset_json.get("file_ending", ".nii.gz")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"seg{ending}"
        rw.write_seg(np.asarray(seg), str(out), props)
        img = nib.load(str(out))
        return np.rint(np.asarray(img.dataobj)).astype(np.int64), img.affine.copy()
