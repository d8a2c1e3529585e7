"""Rule fit_habitat_model: population habitat model from discovery voxel samples only."""

from radiogenomics.habitats.model import fit_and_save
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake

setup_logging(sm.log[0])
hab = sm.params.habitats
fit_and_save(
    list(sm.input.samples),
    dict(sm.output),
    method=hab["method"],
    k=hab["k"],
    k_range=tuple(hab["k_range"]),
    seed=int(sm.params.seed),
)
