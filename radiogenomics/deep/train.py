"""Deep learning per marker (cohort stage): `CNNClassifier`, a scikit-learn classifier on crops.

X is the crop array (n, channels, s, s, s) of `deep.crops` (a `CropArray` also answers `.iloc`, so
`cohort.models.nested_cv` and `permutation_control` index it as they index a feature frame). Each
`fit` is self-contained: a stratified inner validation split of the training rows only (early
stopping on its class-balanced loss), flips / small rotations / intensity jitter, class-balanced
loss, all randomness drawn from `seed`, a fixed thread count and deterministic algorithms, so two
CPU runs give byte-identical predictions. A GPU is used when torch sees one; none is needed.
The fitted network is kept on the CPU, so the estimator pickles (joblib) and loads anywhere.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

# cuBLAS is deterministic only with a fixed workspace, which must be set before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from radiogenomics.deep.crops import CropSettings  # noqa: E402
from radiogenomics.deep.network import ResNet3D, load_checkpoint  # noqa: E402
from radiogenomics.errors import ConfigError  # noqa: E402


def resolve_device(device: str) -> torch.device:
    """`auto` -> cuda when torch sees a GPU, else cpu; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def torch_runtime(threads: int, seed: int, device: torch.device) -> Iterator[None]:
    """Fixed threads, deterministic algorithms and a private seeded RNG; restores all on exit."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_cudnn = torch.backends.cudnn.benchmark
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)
        torch.backends.cudnn.benchmark = prev_cudnn


def rotation_matrices(angles_deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations from (n, 3) angles about the three axes, in degrees."""
    a = np.deg2rad(angles_deg)
    c, s = np.cos(a), np.sin(a)
    out = np.empty((len(a), 3, 3))
    for i in range(len(a)):
        rx = np.array([[1, 0, 0], [0, c[i, 0], -s[i, 0]], [0, s[i, 0], c[i, 0]]])
        ry = np.array([[c[i, 1], 0, s[i, 1]], [0, 1, 0], [-s[i, 1], 0, c[i, 1]]])
        rz = np.array([[c[i, 2], -s[i, 2], 0], [s[i, 2], c[i, 2], 0], [0, 0, 1]])
        out[i] = rz @ ry @ rx
    return out


def augment(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    flip_axes: Sequence[int],
    rotate_deg: float,
    jitter: float,
    intensity: np.ndarray,
) -> torch.Tensor:
    """Random flips and small rotations (one trilinear resampling), per-channel scale/shift."""
    n, c = x.shape[:2]
    # affine_grid's columns are (W, H, D), the reverse of the array's axes (0, 1, 2).
    signs = np.ones((n, 3))
    for a in flip_axes:
        signs[:, 2 - int(a)] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    rot = rotation_matrices(rng.uniform(-rotate_deg, rotate_deg, (n, 3)))
    if rotate_deg > 0 or (signs < 0).any():
        # A flip is a mirror of the normalised grid: exact at voxel centres (align_corners=False).
        theta = np.concatenate([rot * signs[:, None, :], np.zeros((n, 3, 1))], axis=2)
        theta_t = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta_t, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if jitter > 0 and intensity.any():
        scale = np.where(intensity, np.exp(rng.normal(0, jitter, (n, c))), 1.0)
        shift = np.where(intensity, rng.normal(0, jitter, (n, c)), 0.0)
        shape = (n, c, 1, 1, 1)
        x = x * torch.as_tensor(scale, dtype=x.dtype, device=x.device).view(shape)
        x = x + torch.as_tensor(shift, dtype=x.dtype, device=x.device).view(shape)
    return x


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """n / (2 n_class) per row: both classes weigh the same in the loss."""
    counts = np.bincount(y.astype(int), minlength=2).astype(float)
    return (len(y) / (2.0 * np.maximum(counts, 1.0)))[y.astype(int)]


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Compact 3-D ResNet on crops (n, c, s, s, s); binary, scikit-learn compatible (clone, joblib).

    Rows with any non-finite value (sessions without a crop) are left out of training and get
    the training prevalence as their probability, so callers keep the rows of other strategies.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (8, 16, 32),
        blocks: tuple[int, ...] = (1, 1, 1),
        stem_kernel: int = 3,
        stem_stride: int = 2,
        dropout: float = 0.3,
        epochs: int = 60,
        batch_size: int = 8,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        val_fraction: float = 0.2,
        patience: int = 15,
        min_epochs: int = 10,
        flip_axes: tuple[int, ...] = (0, 1, 2),
        rotate_deg: float = 10.0,
        jitter: float = 0.1,
        mask_channels: tuple[int, ...] = (),
        class_weight: str | None = "balanced",
        checkpoint: str | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        self.widths = widths
        self.blocks = blocks
        self.stem_kernel = stem_kernel
        self.stem_stride = stem_stride
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.min_epochs = min_epochs
        self.flip_axes = flip_axes
        self.rotate_deg = rotate_deg
        self.jitter = jitter
        self.mask_channels = mask_channels
        self.class_weight = class_weight
        self.checkpoint = checkpoint
        self.seed = seed
        self.threads = threads
        self.device = device

    def build_network(self, in_channels: int) -> ResNet3D:
        """The untrained network for `in_channels` (initialised from `checkpoint` when set)."""
        net = ResNet3D(
            in_channels,
            tuple(self.widths),
            tuple(self.blocks),
            stem_kernel=int(self.stem_kernel),
            stem_stride=int(self.stem_stride),
            dropout=float(self.dropout),
        )
        if self.checkpoint:
            load_checkpoint(net, self.checkpoint)
        return net

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stratified (train, validation) rows; no validation when a class has < 3 rows."""
        idx = np.arange(len(y))
        if self.val_fraction <= 0 or np.bincount(y, minlength=2).min() < 3:
            return idx, idx[:0]
        n_val = max(2, int(round(self.val_fraction * len(y))))
        sss = StratifiedShuffleSplit(1, test_size=n_val, random_state=int(self.seed))
        tr, va = next(sss.split(idx, y))
        return np.sort(tr), np.sort(va)

    def _loss(self, net, X, y, w, rows, device) -> float:
        """Weighted mean BCE of `rows` in eval mode (no augmentation)."""
        logits = self._logits(net, X[rows], device)
        loss = F.binary_cross_entropy_with_logits(
            torch.as_tensor(logits), torch.as_tensor(y[rows], dtype=torch.float64), reduction="none"
        ).numpy()
        return float((loss * w[rows]).sum() / w[rows].sum())

    def _logits(self, net: ResNet3D, X: np.ndarray, device: torch.device) -> np.ndarray:
        net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), max(1, int(self.batch_size))):
                xb = self._tensor(X[start : start + int(self.batch_size)], device)
                out.append(net(xb).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    @staticmethod
    def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
        # channels-last 3-D: oneDNN's fast convolution layout on CPU (3x faster measured).
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
        return t.contiguous(memory_format=torch.channels_last_3d)

    def fit(self, X, y) -> CNNClassifier:
        """Train with early stopping on an inner stratified validation split of (X, y)."""
        X = np.asarray(X)
        if X.ndim != 5:
            raise ValueError(f"CNNClassifier expects crops (n, c, z, y, x); got shape {X.shape}")
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"CNNClassifier is binary; got classes {self.classes_.tolist()}")
        yb = (y == self.classes_[1]).astype(int)
        ok = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        self.n_skipped_ = int((~ok).sum())
        X, yb = X[ok], yb[ok]
        self.prevalence_ = float(yb.mean())
        self.input_shape_ = tuple(X.shape[1:])
        device = resolve_device(self.device)
        self.device_ = str(device)
        rng = np.random.default_rng(int(self.seed))
        intensity = np.ones(X.shape[1], bool)
        intensity[list(self.mask_channels)] = False
        tr, va = self._split(yb)
        w = balanced_weights(yb) if self.class_weight == "balanced" else np.ones(len(yb))
        w_val = w.copy()
        if len(va):
            w_val[va] = balanced_weights(yb[va])
        with torch_runtime(self.threads, self.seed, device):
            net = self.build_network(X.shape[1]).to(device)
            net = net.to(memory_format=torch.channels_last_3d)
            opt = torch.optim.AdamW(
                net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay)
            )
            best, best_state, best_epoch, wait = np.inf, None, 0, 0
            history = []
            for epoch in range(1, int(self.epochs) + 1):
                train_loss = self._epoch(net, opt, X, yb, w, tr, rng, intensity, device)
                val_loss = self._loss(net, X, yb, w_val, va, device) if len(va) else np.nan
                history.append((epoch, train_loss, val_loss))
                if not len(va):
                    continue
                if epoch >= int(self.min_epochs) and val_loss < best - 1e-6:
                    best, best_epoch, wait = val_loss, epoch, 0
                    best_state = copy.deepcopy(net.state_dict())
                elif epoch >= int(self.min_epochs):
                    wait += 1
                    if wait >= int(self.patience):
                        break
            if best_state is not None:
                net.load_state_dict(best_state)
            else:
                best_epoch = history[-1][0]
            net = net.to("cpu").eval()
        self.model_ = net
        self.best_epoch_ = int(best_epoch)
        self.history_ = np.array(history, dtype=float)
        self.n_train_, self.n_val_ = len(tr), len(va)
        return self

    def _epoch(self, net, opt, X, y, w, rows, rng, intensity, device) -> float:
        """One pass over the training rows in seeded random order; mean weighted loss."""
        net.train()
        order = rng.permutation(rows)
        bs = max(1, int(self.batch_size))
        total, weight = 0.0, 0.0
        for start in range(0, len(order), bs):
            b = order[start : start + bs]
            xb = augment(
                self._tensor(X[b], device),
                rng,
                flip_axes=tuple(self.flip_axes),
                rotate_deg=float(self.rotate_deg),
                jitter=float(self.jitter),
                intensity=intensity,
            ).contiguous(memory_format=torch.channels_last_3d)
            yt = torch.as_tensor(y[b], dtype=torch.float32, device=device)
            wt = torch.as_tensor(w[b], dtype=torch.float32, device=device)
            loss = (F.binary_cross_entropy_with_logits(net(xb), yt, reduction="none") * wt).sum()
            opt.zero_grad(set_to_none=True)
            (loss / wt.sum()).backward()
            opt.step()
            total += float(loss.detach().cpu())
            weight += float(wt.sum().cpu())
        return total / max(weight, 1e-12)

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) probabilities; rows without a crop (non-finite) get the training prevalence."""
        X = np.asarray(X)
        if tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"crops of shape {tuple(X.shape[1:])}, the model was trained on {self.input_shape_}"
            )
        ok = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        p = np.full(len(X), self.prevalence_)
        if ok.any():
            device = resolve_device(self.device)
            with torch_runtime(self.threads, self.seed, device):
                net = self.model_.to(device)
                logits = self._logits(net, X[ok], device)
                self.model_ = net.to("cpu")
            p[ok] = 1.0 / (1.0 + np.exp(-logits))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class with the higher probability."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


# markers.yaml keys of a `model: cnn` strategy that set CNNClassifier parameters (same names).
MODEL_KEYS = (
    "widths", "blocks", "stem_kernel", "stem_stride", "dropout", "epochs", "batch_size", "lr",
    "weight_decay", "val_fraction", "patience", "min_epochs", "flip_axes", "rotate_deg", "jitter",
    "class_weight", "checkpoint", "threads", "device",
)  # fmt: skip
# Keys that define the crops (deep.crops.CropSettings.from_config).
CROP_KEYS = ("channels", "roi_channels", "centre_roi", "crop_mm", "crop_size", "clip_z")


def cnn_pipeline(cfg: Mapping[str, Any], seed: int, settings: CropSettings) -> Pipeline:
    """The unfitted `Pipeline([("model", CNNClassifier)])` of a cnn strategy's markers.yaml keys.

    Grid keys then read `model__epochs` etc., as for the other strategies. Unknown keys fail
    here, before any fold runs; a checkpoint is checked against the network at once.
    """
    allowed = set(MODEL_KEYS) | set(CROP_KEYS) | {"model", "features", "grid"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigError(f"cnn strategy: unknown keys {unknown} (allowed: {sorted(allowed)})")
    params: dict[str, Any] = {k: cfg[k] for k in MODEL_KEYS if k in cfg}
    for k in ("widths", "blocks", "flip_axes"):
        if k in params:
            params[k] = tuple(int(v) for v in params[k])
    if params.get("checkpoint"):
        params["checkpoint"] = str(params["checkpoint"])
    est = CNNClassifier(seed=int(seed), mask_channels=settings.mask_channels, **params)
    if est.checkpoint:
        est.build_network(len(settings.channel_names))  # raises CheckpointError now, not per fold
    return Pipeline([("model", est)])
