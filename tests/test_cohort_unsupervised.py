"""Unsupervised subtypes (cohort stage): planted clusters recovered, k chosen by silhouette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from radiogenomics.cohort.unsupervised import (
    association,
    choose_k,
    embed,
    run_unsupervised,
    subtypes,
)
from radiogenomics.config import section_defaults
from radiogenomics.io import read_tsv, write_tsv


def clustered(n: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    centres = rng.normal(0, 4, (3, 10))
    X = centres[truth] + rng.normal(size=(n, 10))
    df = pd.DataFrame(X, columns=[f"histogram__t2__edema__f{i}" for i in range(10)])
    df["site"] = "a"
    return df, truth


def test_planted_clusters_recovered() -> None:
    X, truth = clustered()
    Z, scores, evr = embed(X, "site")
    k, table = choose_k(scores, range(2, 7), seed=0)
    assert k == 3 and len(table) == 5
    st = subtypes(scores, k, seed=0)
    assert adjusted_rand_score(truth, st) > 0.95
    # One far outlier: silhouette alone would split it off as a "subtype"; the size rule does not.
    X2 = X.copy()
    X2.iloc[0, :10] = 16.0  # beyond every cluster, not so far that it dominates the PCA
    _, s2, _ = embed(X2, "site")
    k_sized, t2 = choose_k(s2, range(2, 7), seed=0, min_fraction=0.05)
    assert k_sized == 3
    assert choose_k(s2, range(2, 7), seed=0)[0] == 4  # silhouette alone: outlier as a subtype
    assert (t2["smallest_cluster"] == 1).any()
    assert not t2.loc[t2["smallest_cluster"] == 1, "eligible"].any()
    assert np.bincount(st)[1] >= np.bincount(st)[2] >= np.bincount(st)[3]  # numbered by size
    labels = pd.DataFrame({"mgmt": np.where(truth == 0, "methylated", "unmethylated")})
    assoc = association(st, labels)
    assert (assoc["marker"] == "mgmt").all() and assoc["p_value"].iloc[0] < 1e-10


def test_run_unsupervised_outputs(tmp_path: Path) -> None:
    X, truth = clustered(90, 1)
    ids = pd.DataFrame(
        {
            "cohort": "syn",
            "subject": [f"s{i}" for i in range(90)],
            "session": "01",
            "role": "discovery",
        }
    )
    write_tsv(pd.concat([ids, X], axis=1), tmp_path / "f.tsv")
    write_tsv(
        ids[["cohort", "subject"]].assign(idh=np.where(truth == 1, "mutant", "wildtype")),
        tmp_path / "l.tsv",
    )
    settings = section_defaults(
        "cohort",
        {"unsupervised": {"features": ["^histogram__"], "k_max": 5, "heatmap_top": 10}},
    ) | {"seed": 0}
    run_unsupervised(
        str(tmp_path / "f.tsv"), str(tmp_path / "l.tsv"), None, settings, str(tmp_path / "u")
    )
    st = read_tsv(tmp_path / "u" / "subtypes.tsv")
    assert st["subtype"].nunique() == 3
    assert read_tsv(tmp_path / "u" / "silhouette.tsv")["selected"].sum() == 1
    assert read_tsv(tmp_path / "u" / "association.tsv")["marker"].eq("idh").all()
    assert (tmp_path / "u" / "heatmap.png").stat().st_size > 0
    # Two subjects (the TCGA-LGG example): every table says why the stage did not run.
    few = read_tsv(tmp_path / "f.tsv").head(2)
    write_tsv(few, tmp_path / "f2.tsv")
    run_unsupervised(
        str(tmp_path / "f2.tsv"), str(tmp_path / "l.tsv"), None, settings, str(tmp_path / "u2")
    )
    for name in ("subtypes", "silhouette", "pca_variance", "association"):
        table = read_tsv(tmp_path / "u2" / f"{name}.tsv")
        assert (table["status"] == "not_run").all(), name
        assert "2 discovery subject(s)" in table["reason"].iloc[0]
    assert (tmp_path / "u2" / "heatmap.png").stat().st_size > 0
