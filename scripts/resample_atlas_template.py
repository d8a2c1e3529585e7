"""Rule resample_atlas_template: nilearn's MNI152 T1 and WM maps at the atlas resolution, once."""

from radiogenomics.imaging.atlas import write_template
from radiogenomics.runner import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821
write_template(
    int(snakemake.params.resolution_mm),  # noqa: F821
    snakemake.output.t1,  # noqa: F821
    snakemake.output.wm,  # noqa: F821
)
