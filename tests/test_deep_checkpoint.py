"""Fine-tuning from a user checkpoint: MedicalNet-style files load, mismatches name the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radiogenomics.deep.network import CheckpointError, ResNet3D, load_checkpoint
from radiogenomics.deep.synthetic import planted_crops
from radiogenomics.deep.train import CNNClassifier


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_checkpoint_round_trip_medicalnet_style(tmp_path):
    torch.manual_seed(0)
    src = ResNet3D(2, widths=(4, 8), blocks=(1, 1))
    state = _state(src)
    # MedicalNet saves {'state_dict': ...} from nn.DataParallel ('module.' keys) with a seg head.
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    wrapped["state_dict"]["module.conv_seg.0.weight"] = torch.zeros(3, 8, 1, 1, 1)
    path = tmp_path / "resnet_tiny.pth"
    torch.save(wrapped, path)
    torch.manual_seed(1)
    dst = ResNet3D(2, widths=(4, 8), blocks=(1, 1))
    loaded = load_checkpoint(dst, path)
    assert "fc.weight" not in loaded and "conv1.weight" in loaded
    for k, v in dst.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, state[k]), k
    assert not torch.equal(dst.fc.weight, state["fc.weight"])  # the head stays fresh


def test_single_channel_stem_is_spread_over_the_channels(tmp_path):
    torch.manual_seed(0)
    one = ResNet3D(1, widths=(4, 8), blocks=(1, 1)).eval()
    path = tmp_path / "mono.pt"
    torch.save(one.state_dict(), path)
    three = ResNet3D(3, widths=(4, 8), blocks=(1, 1)).eval()
    load_checkpoint(three, path)
    x = torch.randn(1, 1, 12, 12, 12)
    with torch.no_grad():
        # Equal channels: the stem (and so the whole feature map) answers as the 1-channel net.
        assert torch.allclose(three.features(x.repeat(1, 3, 1, 1, 1)), one.features(x), atol=1e-5)


def test_mismatching_checkpoint_names_file_and_keys(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(ResNet3D(2, widths=(4, 16), blocks=(1, 1)).state_dict(), path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(ResNet3D(2, widths=(4, 8), blocks=(1, 1)), path)
    msg = str(exc.value)
    assert str(path) in msg and exc.value.file == str(path)
    want = "shape mismatches: layer2.0.conv1.weight (16, 4, 3, 3, 3) vs network (8, 4, 3, 3, 3)"
    assert want in msg
    deeper = tmp_path / "deeper.pt"
    torch.save(ResNet3D(2, widths=(4, 8), blocks=(1, 2)).state_dict(), deeper)
    with pytest.raises(CheckpointError, match=r"unexpected keys: layer2\.1\.conv1\.weight"):
        load_checkpoint(ResNet3D(2, widths=(4, 8), blocks=(1, 1)), deeper)
    with pytest.raises(CheckpointError, match=r"missing keys: layer2\.1\.conv1\.weight"):
        load_checkpoint(ResNet3D(2, widths=(4, 8), blocks=(1, 2)), path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(ResNet3D(2), junk)
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(ResNet3D(2), tmp_path / "absent.pt")


def test_fit_starts_from_the_checkpoint(tmp_path):
    X, y = planted_crops(n=12, channels=2, size=16, seed=3)
    torch.manual_seed(4)
    src = ResNet3D(2, widths=(4, 8), blocks=(1, 1))
    path = tmp_path / "init.pt"
    torch.save(src.state_dict(), path)
    # lr 0: the optimiser leaves every weight where the checkpoint put it.
    est = CNNClassifier(widths=(4, 8), blocks=(1, 1), epochs=2, lr=0.0, checkpoint=str(path))
    est.fit(X, y)
    for k, v in est.model_.state_dict().items():
        if k.endswith(("conv1.weight", "conv2.weight")) and not k.startswith("fc."):
            assert torch.equal(v, src.state_dict()[k]), k
    bad = CNNClassifier(widths=(4, 16), blocks=(1, 1), epochs=1, checkpoint=str(path))
    with pytest.raises(CheckpointError, match=str(path)):
        bad.fit(X, y)
    assert np.isfinite(est.predict_proba(X)).all()


def test_strategy_keys_build_the_pipeline_and_check_the_checkpoint_early(tmp_path):
    from radiogenomics.deep.crops import CropSettings
    from radiogenomics.deep.train import cnn_pipeline
    from radiogenomics.errors import ConfigError

    settings = CropSettings(channels=("t1ce", "flair"), roi_channels=("whole_tumor",))
    cfg = {"model": "cnn", "channels": ["t1ce", "flair"], "epochs": 5, "widths": [4, 8],
           "blocks": [1, 1], "crop_mm": 4}  # fmt: skip
    est = cnn_pipeline(cfg, 7, settings).named_steps["model"]
    assert (est.epochs, est.widths, est.seed, est.mask_channels) == (5, (4, 8), 7, (2,))
    with pytest.raises(ConfigError, match="unknown keys \\['epoch'\\]"):
        cnn_pipeline({"epoch": 5}, 7, settings)
    path = tmp_path / "other.pt"
    torch.save(ResNet3D(3, widths=(4, 16), blocks=(1, 1)).state_dict(), path)
    with pytest.raises(CheckpointError, match="other.pt"):
        cnn_pipeline({**cfg, "checkpoint": str(path)}, 7, settings)
