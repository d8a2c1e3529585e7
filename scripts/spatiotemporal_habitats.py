"""Rule spatiotemporal_habitats: habitat change vs progression (OR), PFS (HR); classifier AUCs."""

from radiogenomics.habitats.spatiotemporal import run_spatiotemporal
from radiogenomics.runner import setup_logging

sm = snakemake  # noqa: F821 - injected by Snakemake

setup_logging(sm.log[0])
hab = sm.params.habitats
run_spatiotemporal(
    list(sm.input.fractions),
    sm.input.labels,
    dict(sm.output),
    seed=int(sm.params.seed),
    outer_folds=int(hab["cv_outer_folds"]),
    repeats=int(hab["cv_repeats"]),
    inner_folds=int(hab["cv_inner_folds"]),
)
