"""IO at the edges for every stage: atomic writes and loaders whose errors name the file."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from radiogenomics.errors import SubjectError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    The temporary name is fixed per target (`.{stem}.tmp{suffixes}`, keeping the suffixes that
    writers infer the format from): a job killed mid-write leaves it behind, and the rerun that
    Snakemake starts for the incomplete job writes and renames the same name, so no stray file
    survives a resume. One job writes each target, so two writers never share a name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem, _, rest = path.name.partition(".")
    tmp_path = path.parent / (f".{stem}.tmp.{rest}" if rest else f".{stem}.tmp")
    # Truncate a leftover; a block that writes nothing still yields an (empty) file.
    tmp_path.write_bytes(b"")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


# A spreadsheet program runs a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralise_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, behind a `'`; anything else unchanged.

    Text that reads as a number ("-1.5", "+3") is data, not a formula, and stays as it is. A
    carriage return inside text becomes a line feed: the CSV writer quotes a field holding a line
    feed but not one holding a lone CR, which readers take for the end of the row."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_TRIGGERS) and not _is_number(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def _neutralise_labels(labels: pd.Index) -> pd.Index | None:
    """The index/columns with formula-like text neutralised, or None when nothing changes."""
    if isinstance(labels, pd.MultiIndex) or labels.dtype != object:
        return None
    new = [neutralise_formula(v) for v in labels]
    return None if new == list(labels) else pd.Index(new, name=labels.name)


def neutralise_formulas(df: pd.DataFrame, index: bool = True) -> pd.DataFrame:
    """`df` with every formula-like text cell (and column name) neutralised; `df` itself when
    none is, so numeric tables are written exactly as before."""
    out = df
    # Only text columns can hold formulas; picking them by dtype skips the numeric bulk cheaply.
    is_text = pd.api.types.is_object_dtype
    text = [i for i, t in enumerate(df.dtypes) if is_text(t) or isinstance(t, pd.StringDtype)]
    for pos in text:
        col = df.iloc[:, pos]
        fixed = col.map(neutralise_formula, na_action="ignore")
        changed = fixed.ne(col) & col.notna()
        if changed.any():
            if out is df:
                out = df.copy()
            out.iloc[:, pos] = fixed.where(changed, col)
    for axis in ("columns", "index") if index else ("columns",):
        new = _neutralise_labels(getattr(out, axis))
        if new is not None:
            out = out.set_axis(new, axis=axis)
    return out


def write_tsv(df: pd.DataFrame, path: str | Path, index: bool = False) -> None:
    """Write a TSV atomically with a fixed float format so reruns are byte-identical.

    Text cells that a spreadsheet would run as formulas (`=`, `+`, `-`, `@`, tab, carriage return
    first) are written behind a `'`: curators open these tables in spreadsheet programs."""
    df = neutralise_formulas(df, index=index)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=index, float_format="%.10g", lineterminator="\n")


def read_tsv(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a TSV written by this package."""
    return pd.read_csv(path, sep="\t", **kwargs)


def write_json(obj: dict, path: str | Path) -> None:
    """Write JSON atomically, keys sorted."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def save_nifti(img: nib.Nifti1Image, path: str | Path) -> None:
    """Save a NIfTI atomically, keeping both qform and sform as given."""
    with atomic_path(path) as tmp:
        # No name and a fixed mtime in the gzip header keep reruns byte-identical; level 1 is fast.
        raw = img.to_bytes()
        with (
            open(tmp, "wb") as fh,
            gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0, compresslevel=1) as gz,
        ):
            gz.write(raw)


def save_like(data: np.ndarray, reference: nib.Nifti1Image, path: str | Path, dtype=None) -> None:
    """Save `data` on the grid of `reference` (same affine, qform and sform)."""
    arr = np.asarray(data if dtype is None else data.astype(dtype))
    hdr = reference.header.copy()
    hdr.set_data_dtype(arr.dtype)
    img = nib.Nifti1Image(arr, reference.affine, hdr)
    img.set_qform(reference.affine, code=int(reference.header["qform_code"]) or 1)
    img.set_sform(reference.affine, code=int(reference.header["sform_code"]) or 1)
    # Scaling from the reference would rescale our values.
    img.header.set_slope_inter(1.0, 0.0)
    save_nifti(img, path)


def _read_image(
    path: Path, stage: str, what: str
) -> tuple[nib.spatialimages.SpatialImage, np.ndarray]:
    """The image and its fully read voxels; missing, empty or unreadable files raise
    SubjectError naming the file."""
    if not path.exists():
        raise SubjectError(f"{what} not found", stage=stage, file=path)
    if path.stat().st_size == 0:
        raise SubjectError(
            f"{what} is an empty file (an earlier step failed?)", stage=stage, file=path
        )
    try:
        img = nib.load(str(path))
        return img, np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt/truncated files
        raise SubjectError(
            f"cannot read {what}: {type(exc).__name__}: {exc}", stage=stage, file=path
        ) from exc


def load_nifti(path: str | Path, *, stage: str = "", what: str = "image") -> nib.Nifti1Image:
    """Load and fully read a NIfTI; corrupt, truncated or non-3D files raise SubjectError."""
    path = Path(path)
    img, data = _read_image(path, stage, what)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise SubjectError(f"{what} must be 3-D, got shape {data.shape}", stage=stage, file=path)
    out = nib.Nifti1Image(
        np.asarray(data), img.affine, img.header if isinstance(img, nib.Nifti1Image) else None
    )
    return out


def load_nifti_4d(
    path: str | Path, *, stage: str = "", what: str = "4-D series", min_volumes: int = 2
) -> nib.Nifti1Image:
    """Load and fully read a 4-D NIfTI (x, y, z, volumes); 3-D or corrupt files raise SubjectError.

    `load_nifti` rejects 4-D on purpose; raw acquisitions (DSC, DWI, DCE) come through here."""
    path = Path(path)
    img, data = _read_image(path, stage, what)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]  # some converters write (x, y, z, 1, t)
    if data.ndim != 4:
        raise SubjectError(
            f"{what} must be 4-D (x, y, z, volumes), got shape {data.shape}", stage=stage, file=path
        )
    if data.shape[3] < min_volumes:
        raise SubjectError(
            f"{what} has {data.shape[3]} volume(s), at least {min_volumes} needed",
            stage=stage,
            file=path,
        )
    return nib.Nifti1Image(
        np.asarray(data), img.affine, img.header if isinstance(img, nib.Nifti1Image) else None
    )
