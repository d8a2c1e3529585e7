"""Deep learning per marker (cohort stage): the 3-D ResNet and the checkpoint loader.

Parameter names follow MedicalNet's 3-D ResNets (`conv1`, `bn1`, `layer{i}.{j}.conv1/bn1/conv2/bn2`,
`layer{i}.0.downsample.0/1`), so a MedicalNet-style state_dict of the same widths and depths loads
as it is: `widths=(64, 128, 256, 512), blocks=(1, 1, 1, 1), stem_kernel=7, stem_stride=2` is
MedicalNet's ResNet-10. The default is far smaller (a few tens of thousands of weights): tens of
subjects cannot train more, and it must run on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from radiogenomics.errors import ConfigError

# Heads are task-specific: a checkpoint's classifier/segmentation head is never loaded.
HEAD_PREFIXES = ("fc.", "conv_seg.")


class CheckpointError(ConfigError):
    """A pretrained checkpoint that cannot initialise the network; names the file."""

    def __init__(self, message: str, *, file: str | Path) -> None:
        self.file = str(file)
        super().__init__(f"checkpoint {file}: {message}")


class BasicBlock(nn.Module):
    """Two 3x3x3 convolutions with batch norm and an identity (or 1x1x1 projection) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            # MedicalNet's shortcut type B: projection only where the shape changes.
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.downsample is None else self.downsample(x)
        return self.relu(out + short)


class ResNet3D(nn.Module):
    """Stem -> residual stages (stride 2 from the second) -> global mean -> dropout -> 1 logit."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int] = (8, 16, 32),
        blocks: Sequence[int] = (1, 1, 1),
        stem_kernel: int = 3,
        stem_stride: int = 1,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {tuple(widths)} and blocks {tuple(blocks)} differ in length")
        self.conv1 = nn.Conv3d(
            in_channels,
            widths[0],
            stem_kernel,
            stride=stem_stride,
            padding=stem_kernel // 2,
            bias=False,
        )
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        inplanes = widths[0]
        self.n_layers = len(widths)
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(inplanes, w, stride)] + [BasicBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = w
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(inplanes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map of the last stage (the Grad-CAM target)."""
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Logit from a feature map; a plain mean, whose backward is deterministic on CUDA too."""
        return self.fc(self.dropout(fmap.mean(dim=(2, 3, 4)))).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of the positive class, shape (n,)."""
        return self.head(self.features(x))


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a file: plain, or wrapped as {'state_dict': ...} (MedicalNet)."""
    if not path.is_file():
        raise CheckpointError("file not found", file=path)
    try:
        # weights_only: a checkpoint is data; never run pickled code from a user-supplied file.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-tensor pickles
        raise CheckpointError(
            f"cannot read as a torch state_dict: {type(exc).__name__}: {exc}", file=path
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("expected a dict of tensors (a state_dict)", file=path)
    # Saved from nn.DataParallel (MedicalNet does): keys carry a 'module.' prefix.
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _first(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def load_checkpoint(model: ResNet3D, path: str | Path) -> list[str]:
    """Initialise `model` (all but its head) from a checkpoint; returns the keys loaded.

    A single-channel stem (MedicalNet is trained on one MR channel) is copied to every input
    channel and divided by their number, so the stem's response to equal channels is unchanged.
    Any other missing key, unexpected key or shape difference raises CheckpointError.
    """
    path = Path(path)
    state = {k: v for k, v in _read_state(path).items() if not k.startswith(HEAD_PREFIXES)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = []
    for k in own:
        if k not in state or state[k].shape == own[k].shape:
            continue
        ck, mine = state[k], own[k]
        one_channel_stem = k == "conv1.weight" and ck.ndim == 5 and ck.shape[1] == 1
        if one_channel_stem and ck.shape[:1] + ck.shape[2:] == mine.shape[:1] + mine.shape[2:]:
            state[k] = ck.repeat(1, mine.shape[1], 1, 1, 1) / mine.shape[1]
            continue
        wrong.append(f"{k} {tuple(ck.shape)} vs network {tuple(mine.shape)}")
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches: {_first(wrong)}")
    if problems:
        raise CheckpointError(
            "does not match the network architecture; " + "; ".join(problems), file=path
        )
    merged = model.state_dict()
    merged.update({k: v.to(merged[k].dtype) for k, v in state.items()})
    model.load_state_dict(merged)
    return sorted(state)
