"""Imaging chain (preprocessing): reorientation to RAS+ with qform and sform kept consistent."""

from __future__ import annotations

import nibabel as nib
import numpy as np


def to_ras(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Return `img` with voxel axes closest to RAS+; unchanged (same header) if already RAS."""
    if nib.aff2axcodes(img.affine) == ("R", "A", "S"):
        return img
    src = nib.io_orientation(img.affine)
    tgt = nib.orientations.axcodes2ornt(("R", "A", "S"))
    xform = nib.orientations.ornt_transform(src, tgt)
    data = nib.orientations.apply_orientation(np.asarray(img.dataobj), xform)
    shift = nib.orientations.inv_ornt_aff(xform, img.shape[:3])
    hdr = img.header.copy()
    out = nib.Nifti1Image(data, hdr.get_best_affine(), hdr)
    # Both forms move with the voxel axes, so neither is lost or left stale.
    out.set_qform(img.get_qform() @ shift, code=int(hdr["qform_code"]) or 1)
    out.set_sform(img.get_sform() @ shift, code=int(hdr["sform_code"]) or 1)
    return out
