"""Deep learning per marker (cohort stage): Grad-CAM saliency of a fitted CNN for one session.

The map is computed on the last residual stage (gradient-weighted activations, ReLU), upsampled
trilinearly to the crop and scaled to [0, 1]. It is written twice: on the crop's own grid (the
crop affine, so any viewer places it in the subject's world space) and resampled onto the subject's
image grid (zero outside the crop), plus a PNG with three orthogonal slices through its peak.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy import ndimage  # noqa: E402

from radiogenomics.deep.train import CNNClassifier, torch_runtime  # noqa: E402
from radiogenomics.io import atomic_path, save_like, save_nifti  # noqa: E402


def as_cnn(model) -> CNNClassifier:
    """The fitted CNNClassifier itself or the last step of a Pipeline holding one."""
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    if not isinstance(est, CNNClassifier) or not hasattr(est, "model_"):
        raise TypeError(f"expected a fitted CNNClassifier, got {type(est).__name__}")
    return est


def grad_cam(model, crop: np.ndarray, target: int = 1, stage: int | None = None) -> np.ndarray:
    """Grad-CAM of one crop (c, s, s, s) for class `target` (1 positive, 0 negative), in [0, 1].

    `stage` is the residual stage whose activations are weighted (1-based). By default the
    deepest stage whose map still has >= 6 voxels per side: the last stage of the default
    network is 3^3 on a 24^3 crop, too coarse to point at a part of the tumour.
    """
    est = as_cnn(model)
    crop = np.asarray(crop, dtype=np.float32)
    if crop.shape != est.input_shape_:
        raise ValueError(f"crop of shape {crop.shape}, the model expects {est.input_shape_}")
    net = est.model_.eval()
    if stage is not None and not 1 <= int(stage) <= net.n_layers:
        raise ValueError(f"stage {stage} not in 1..{net.n_layers}")
    with torch_runtime(est.threads, est.seed, torch.device("cpu")):
        x = net.relu(net.bn1(net.conv1(torch.as_tensor(crop[None]))))
        maps = []
        for i in range(net.n_layers):
            x = getattr(net, f"layer{i + 1}")(x)
            x.retain_grad()
            maps.append(x)
        if stage is None:
            fine = [i for i, m in enumerate(maps) if min(m.shape[2:]) >= 6]
            stage = (fine[-1] if fine else 0) + 1
        logit = net.head(x)[0]
        (logit if target == 1 else -logit).backward()
        fmap = maps[int(stage) - 1]
        weights = fmap.grad.mean(dim=(2, 3, 4), keepdim=True)
        cam = torch.relu((weights * fmap).sum(dim=1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=crop.shape[1:], mode="trilinear", align_corners=False)
        net.zero_grad(set_to_none=True)
    out = cam[0, 0].numpy().astype(np.float32)
    peak = float(out.max())
    return out / peak if peak > 0 else out


def cam_image(cam: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """The map on the crop's grid, qform and sform both the crop affine."""
    img = nib.Nifti1Image(np.asarray(cam, np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def cam_on_reference(cam: np.ndarray, affine: np.ndarray, reference: nib.Nifti1Image) -> np.ndarray:
    """The map resampled (trilinear) onto the reference image's grid; 0 outside the crop."""
    idx = np.indices(reference.shape[:3], dtype=float).reshape(3, -1)
    world = reference.affine[:3, :3] @ idx + reference.affine[:3, 3:4]
    inv = np.linalg.inv(affine)
    vox = inv[:3, :3] @ world + inv[:3, 3:4]
    out = ndimage.map_coordinates(cam, vox, order=1, mode="constant", cval=0.0)
    return out.reshape(reference.shape[:3]).astype(np.float32)


def overlay_png(
    path: str | Path,
    background: np.ndarray,
    cam: np.ndarray,
    title: str,
    contour: np.ndarray | None = None,
) -> None:
    """Axial, coronal and sagittal slices through the map's peak, map over the background."""
    # Through the map's peak; through the centre when the map is empty.
    peak = (
        np.unravel_index(int(np.argmax(cam)), cam.shape)
        if cam.max() > 0
        else tuple(n // 2 for n in cam.shape)
    )
    # Crop axes are RAS (i = x, j = y, k = z): transpose so anterior/superior point up.
    cuts = [
        ("axial", background[:, :, peak[2]], cam[:, :, peak[2]], None),
        ("coronal", background[:, peak[1], :], cam[:, peak[1], :], None),
        ("sagittal", background[peak[0], :, :], cam[peak[0], :, :], None),
    ]
    if contour is not None:
        cuts = [
            (n, b, c, m)
            for (n, b, c, _), m in zip(
                cuts,
                [contour[:, :, peak[2]], contour[:, peak[1], :], contour[peak[0], :, :]],
                strict=True,
            )
        ]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    lo, hi = np.percentile(background, [1, 99])
    for ax, (name, bg, cm, m) in zip(axes, cuts, strict=True):
        ax.imshow(bg.T, origin="lower", cmap="gray", vmin=lo, vmax=hi)
        ax.imshow(np.ma.masked_less(cm.T, 0.05), origin="lower", cmap="jet", alpha=0.45, vmin=0,
                  vmax=1)  # fmt: skip
        if m is not None and m.max() > 0.5:
            ax.contour(m.T, levels=[0.5], colors="w", linewidths=0.8, origin="lower")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def write_saliency(
    model,
    crop: np.ndarray,
    affine: np.ndarray,
    out_dir: str | Path,
    name: str,
    *,
    reference: str | Path | None = None,
    channels: tuple[str, ...] = (),
    background: int = 0,
    title: str = "",
) -> dict[str, str]:
    """Grad-CAM of one session: `{name}_crop.nii.gz`, `{name}.nii.gz` on `reference`, `{name}.png`.

    The map explains the predicted class (a negative prediction has no positive evidence to
    show). `background` is the channel under the map; a `roi:` channel, if any, is outlined.
    """
    out_dir = Path(out_dir)
    est = as_cnn(model)
    prob = float(est.predict_proba(np.asarray(crop)[None])[0, 1])
    target = int(prob >= 0.5)
    cam = grad_cam(est, crop, target=target)
    paths = {
        "crop_nifti": str(out_dir / f"{name}_crop.nii.gz"),
        "png": str(out_dir / f"{name}.png"),
    }
    save_nifti(cam_image(cam, affine), paths["crop_nifti"])
    if reference is not None:
        ref = nib.load(str(reference))
        paths["nifti"] = str(out_dir / f"{name}.nii.gz")
        save_like(cam_on_reference(cam, affine, ref), ref, paths["nifti"], dtype=np.float32)
    rois = [i for i, c in enumerate(channels) if c.startswith("roi:")]
    contour = np.asarray(crop[rois[0]]) if rois else None
    label = channels[background] if channels else f"channel {background}"
    what = f"{name}: p = {prob:.2f}, map for class {est.classes_[target]} (over {label})"
    overlay_png(paths["png"], np.asarray(crop[background]), cam, title or what, contour)
    return paths


def saliency_rows(ids: pd.DataFrame, y: np.ndarray, prob: np.ndarray, n: int = 4) -> pd.DataFrame:
    """A few sessions to show: the most confident correct positives and negatives (n/2 each)."""
    df = ids.reset_index(drop=True).assign(y=np.asarray(y).astype(int), prob=np.asarray(prob))
    pos = df[df["y"] == 1].sort_values("prob", ascending=False, kind="stable").head((n + 1) // 2)
    neg = df[df["y"] == 0].sort_values("prob", ascending=True, kind="stable").head(n // 2)
    return pd.concat([pos, neg]).reset_index(drop=True)


SALIENCY_COLUMNS = ["cohort", "subject", "session", "y", "prob", "nifti", "crop_nifti", "png"]


def run_cnn_saliency(
    model_path: str,
    predictions: str,
    crops: str,
    out_dir: str,
    out_table: str,
    n: int = 4,
    results_root: str | Path = "results",
) -> None:
    """Rule cnn_saliency: Grad-CAM of the final model for the `n` most confidently correct
    out-of-fold sessions (half positive, half negative), NIfTI on the crop and subject grids + PNG.
    """
    import joblib

    from radiogenomics.deep.crops import CropSettings, load_crop_set
    from radiogenomics.io import read_tsv, write_tsv
    from radiogenomics.paths import subject_dir

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = joblib.load(model_path)
    if payload.get("pipeline") is None:
        write_tsv(pd.DataFrame(columns=SALIENCY_COLUMNS), out_table)
        return
    settings = CropSettings.from_config(payload.get("crop_options") or {})
    cs = load_crop_set(crops, settings)
    preds = read_tsv(predictions, dtype={"cohort": str, "subject": str, "session": str})
    ids = preds[["cohort", "subject", "session"]]
    chosen = saliency_rows(ids, preds["y"].to_numpy(), preds["prob"].to_numpy(), n)
    rows = []
    for rec in chosen.to_dict("records"):
        try:
            i = cs.row_of(rec["cohort"], rec["subject"], rec["session"])
        except KeyError:
            continue
        name = f"{rec['cohort']}_{rec['subject']}_{rec['session']}"
        sd = subject_dir(rec["cohort"], rec["subject"], rec["session"], results_root)
        ref = sd / "prep" / f"{cs.channels[0]}.nii.gz"
        paths = write_saliency(
            payload["pipeline"],
            cs.array[i],
            cs.affines[i],
            out,
            name,
            reference=ref if ref.is_file() else None,
            channels=cs.channels,
            title=f"{payload['marker']} / {payload['strategy']}: {name}, y={int(rec['y'])}, "
            f"out-of-fold p={rec['prob']:.2f}",
        )
        rows.append({**{k: rec[k] for k in ("cohort", "subject", "session", "y", "prob")},
                     "nifti": paths.get("nifti", ""), "crop_nifti": paths["crop_nifti"],
                     "png": paths["png"]})  # fmt: skip
    write_tsv(pd.DataFrame(rows, columns=SALIENCY_COLUMNS), out_table)
