"""Intake stage: raw 4-D acquisitions (DSC, DWI, DTI, DCE) -> `anat/{kind}.nii.gz` + sidecar.

A raw acquisition is a time or diffusion series from which the preprocessing stage computes maps
(`radiogenomics.physiology`). Intake checks that it is 4-D (and that a structural image is not),
reorients it to RAS like every image, keeps its acquisition timing in the de-identified sidecar
(RepetitionTime, EchoTime, FlipAngle, ...; RepetitionTime from the NIfTI header's pixdim[4] when
the sidecar lacks it) and, for diffusion, its b-values and b-vectors (`{kind}.bval`/`.bvec`,
FSL layout, vectors reoriented with the image axes). The counts must match the volumes.

Where each layout's files come from (`{kind}` = dsc, dwi, dti, dce):
- image: the layout's entry `{kind}` (brats pattern, bids suffix, nifti-table row, DICOM series);
- second DSC echo: entry `{kind}_echo2`, or BIDS `echo-2` beside an `echo-1` file;
- sidecar: entry `{kind}_json`, else the JSON beside the image (same stem);
- b-values/vectors: entries `{kind}_bval`/`{kind}_bvec`, else `.bval`/`.bvec` beside the image.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from radiogenomics.errors import SubjectError
from radiogenomics.intake.deid import clean_header, clean_sidecar
from radiogenomics.io import atomic_path, load_nifti_4d, save_nifti, write_json

RAW_KINDS = ("dsc", "dwi", "dti", "dce")
DIFFUSION = ("dwi", "dti")
# A dynamic series needs a baseline, the bolus and its recovery; diffusion needs b0 + one b > 0.
MIN_VOLUMES = {"dsc": 20, "dce": 10, "dwi": 2, "dti": 7}
B0_MAX = 50.0  # s/mm^2: volumes below are b = 0 (their vectors carry no direction)
STAGE = "intake"


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def beside(path: str | Path, ext: str) -> Path:
    """The file with the image's stem and another extension (`.json`, `.bval`, `.bvec`)."""
    p = Path(path)
    return p.with_name(_stem(p) + ext)


def read_sidecar_file(path: str | Path | None) -> dict:
    """A JSON sidecar's whitelisted fields ({} when there is none)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        return clean_sidecar(json.loads(Path(path).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubjectError(f"sidecar is not valid JSON: {exc}", stage=STAGE, file=path) from exc


def read_gradient_file(path: Path, kind: str, n_volumes: int, what: str) -> np.ndarray:
    """b-values (N,) or b-vectors (3, N) from an FSL-style text file, checked against N volumes."""
    try:
        arr = np.loadtxt(path, ndmin=2 if what == "b-vectors" else 1).astype(np.float64)
    except (OSError, ValueError) as exc:
        raise SubjectError(
            f"cannot read the {kind} {what}: {type(exc).__name__}: {exc}", stage=STAGE, file=path
        ) from exc
    if what == "b-values":
        arr = arr.ravel()
        if arr.size != n_volumes:
            raise SubjectError(
                f"{arr.size} b-values for a {kind} series of {n_volumes} volumes",
                stage=STAGE,
                file=path,
            )
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise SubjectError("b-values must be finite and >= 0", stage=STAGE, file=path)
        return arr
    if arr.shape[0] != 3 and arr.shape[1] == 3:
        arr = arr.T
    if arr.shape != (3, n_volumes):
        raise SubjectError(
            f"b-vectors of shape {arr.shape} for a {kind} series of {n_volumes} volumes "
            f"(expected 3 x {n_volumes})",
            stage=STAGE,
            file=path,
        )
    return arr


def b0_vectors_zeroed(bvals: np.ndarray, bvecs: np.ndarray, kind: str, path: Path) -> np.ndarray:
    """b-vectors with the b = 0 volumes' set to 0 (some converters write NaN there); a
    non-finite vector of a diffusion-weighted volume raises."""
    bvecs = bvecs.copy()
    b0 = bvals < B0_MAX
    bvecs[:, b0] = 0.0
    bad = ~np.all(np.isfinite(bvecs), axis=0)
    if bad.any():
        raise SubjectError(
            f"{int(bad.sum())} {kind} b-vector(s) of diffusion-weighted volumes are not finite "
            f"(volume {int(np.flatnonzero(bad)[0])})",
            stage=STAGE,
            file=path,
        )
    return bvecs


def reorient_bvecs(bvecs: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """b-vectors (3, N) in the voxel axes of `affine`, re-expressed in its closest RAS axes
    (the same axis permutation and flips `nib.as_closest_canonical` applies to the image)."""
    ornt = nib.io_orientation(affine)
    out = np.zeros_like(bvecs)
    for in_axis, (out_axis, flip) in enumerate(ornt):
        out[int(out_axis)] = flip * bvecs[in_axis]
    return out


def echo2_source(sources: dict, kind: str) -> str | None:
    """The second echo of a DSC series: entry `{kind}_echo2`, or BIDS `echo-2` beside `echo-1`."""
    if sources.get(f"{kind}_echo2"):
        return sources[f"{kind}_echo2"]
    first = Path(sources[kind])
    if "echo-1" in first.name:
        second = first.with_name(first.name.replace("echo-1", "echo-2"))
        if second.exists():
            return str(second)
    return None


def repetition_from_header(img: nib.Nifti1Image) -> float | None:
    """The volume spacing (s) in a NIfTI header's pixdim[4], when its time unit says so."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] or zooms[3] <= 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
    return float(zooms[3]) * scale if scale else None


def canonical_series(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """RAS-reoriented 4-D series with a clean header."""
    return clean_header(nib.as_closest_canonical(img))


def take_nifti_acquisition(kind: str, sources: dict, out_dir: Path) -> dict:
    """Check and write one raw acquisition of a NIfTI layout; return its manifest entry."""
    src = Path(sources[kind])
    img = load_nifti_4d(
        src, stage=STAGE, what=f"{kind} series (4-D)", min_volumes=MIN_VOLUMES[kind]
    )
    n = int(img.shape[3])
    side_path = sources.get(f"{kind}_json") or beside(src, ".json")
    sidecar = read_sidecar_file(side_path)
    if "RepetitionTime" not in sidecar:
        tr = repetition_from_header(img)
        if tr is not None:
            sidecar["RepetitionTime"] = tr
            sidecar["RepetitionTimeSource"] = "NIfTI header pixdim[4]"
    images = [img]
    if kind == "dsc" and (second := echo2_source(sources, kind)):
        img2 = load_nifti_4d(second, stage=STAGE, what="dsc second echo (4-D)")
        if img2.shape != img.shape or not np.allclose(img2.affine, img.affine, atol=1e-3):
            raise SubjectError(
                f"second DSC echo {img2.shape} does not match the first {img.shape}",
                stage=STAGE,
                file=second,
            )
        te2 = read_sidecar_file(sources.get(f"{kind}_echo2_json") or beside(second, ".json"))
        if "EchoTime" in sidecar and "EchoTime" in te2:
            sidecar["EchoTime"] = [sidecar["EchoTime"], te2["EchoTime"]]
        images.append(img2)
    gradients = None
    if kind in DIFFUSION:
        bval = Path(sources.get(f"{kind}_bval") or beside(src, ".bval"))
        bvec = Path(sources.get(f"{kind}_bvec") or beside(src, ".bvec"))
        if not bval.exists():
            raise SubjectError(
                f"{kind} series without b-values (looked for {bval.name})", stage=STAGE, file=src
            )
        bvals = read_gradient_file(bval, kind, n, "b-values")
        bvecs = read_gradient_file(bvec, kind, n, "b-vectors") if bvec.exists() else None
        if bvecs is not None:
            bvecs = b0_vectors_zeroed(bvals, bvecs, kind, bvec)
        gradients = (bvals, bvecs)
    prov = {"source_orientation": "".join(nib.aff2axcodes(img.affine))}
    return write_acquisition(kind, images, sidecar | prov, gradients, out_dir)


def write_acquisition(
    kind: str,
    images: list[nib.Nifti1Image],
    sidecar: dict,
    gradients: tuple[np.ndarray, np.ndarray | None] | None,
    out_dir: Path,
) -> dict:
    """Write `anat/{kind}.nii.gz` (+ `{kind}_echo2.nii.gz`), `{kind}.json` and, for diffusion,
    `{kind}.bval`/`{kind}.bvec` (reoriented to RAS); return the manifest entry."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, img in enumerate(images):
        name = f"{kind}.nii.gz" if i == 0 else f"{kind}_echo{i + 1}.nii.gz"
        save_nifti(canonical_series(img), out_dir / name)
        files.append(name)
    ras = nib.as_closest_canonical(images[0])
    entry: dict = {
        "files": files,
        "sidecar": f"{kind}.json",
        "volumes": int(images[0].shape[3]),
        "shape": [int(s) for s in ras.shape],
        "voxel_size_mm": [round(float(v), 6) for v in ras.header.get_zooms()[:3]],
    }
    if gradients is not None:
        bvals, bvecs = gradients
        _write_rows(out_dir / f"{kind}.bval", bvals[None, :])
        entry["bval"] = f"{kind}.bval"
        if bvecs is not None:
            _write_rows(out_dir / f"{kind}.bvec", reorient_bvecs(bvecs, images[0].affine) + 0.0)
            entry["bvec"] = f"{kind}.bvec"
        # Shells, not every measured b (scanners report 987-1006 for a nominal 1000).
        entry["b_values"] = sorted({int(round(float(b) / 50.0) * 50) for b in bvals})
    write_json(sidecar | {"acquisition": kind}, out_dir / f"{kind}.json")
    return entry


def _write_rows(path: Path, rows: np.ndarray) -> None:
    """FSL-style text rows (space-separated), written atomically."""
    text = "".join(" ".join(f"{v:.10g}" for v in row) + "\n" for row in np.atleast_2d(rows))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
