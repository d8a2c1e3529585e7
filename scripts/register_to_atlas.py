"""Rule register_to_atlas: subject brain -> MNI152 transforms + template maps in subject space."""

from radiogenomics.imaging.atlas import atlas_subject
from radiogenomics.imaging.common import set_threads
from radiogenomics.runner import run_subject_step

sm = snakemake  # noqa: F821 - injected by Snakemake


def main():
    set_threads(sm.threads)
    cfg = sm.params.config
    out = sm.output
    atlas_subject(
        sm.input.manifest,
        sm.input.mask,
        out.affine,
        out.template,
        out.wm,
        out.hemisphere,
        transform=cfg["transform"],
        template_resolution_mm=cfg["template_resolution_mm"],
        mask_abnormal=cfg["mask_abnormal"],
        warp_out=getattr(out, "warp", None),
        invwarp_out=getattr(out, "invwarp", None),
        seed=sm.params.seed,
    )


if __name__ == "__main__":
    run_subject_step(sm, "register_to_atlas", main)
