"""Unsupervised-first marker analysis (cohort stage): data-driven subtypes and habitat fractions
tested against one marker.

For heterogeneous, dynamic markers (MGMT, EGFR) the review proposes looking for imaging subtypes
first and only then asking whether they carry the marker. A `model: subtypes` strategy clusters
the discovery rows on its features (median imputation, ComBat, z-scores, PCA, k-means with k by
silhouette; labels never enter), then tests the marker against the subtypes (Fisher's exact test
for 2 x 2, chi-square otherwise) and against every `tested` feature (habitat fractions by
default; Kruskal-Wallis), with Benjamini-Hochberg FDR across all of these tests. The fitted
embedding and centroids are kept, so a validation cohort is assigned to the discovery subtypes
(never refitted) and the association is tested there again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, fisher_exact, kruskal
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from radiogenomics.cohort.harmonise import ComBatHarmoniser, FrameImputer
from radiogenomics.cohort.unsupervised import choose_k

TEST_COLUMNS = ["test", "feature", "n", "statistic", "p_value", "q_value", "detail"]


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q), NaN kept as NaN."""
    p = np.asarray(p, float)
    q = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if not len(ok):
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


@dataclass
class SubtypeModel:
    """Discovery-fitted embedding (impute, ComBat, scale, PCA) and k-means centroids."""

    features: list[str]
    batch: str
    imputer: FrameImputer
    combat: ComBatHarmoniser
    scaler: StandardScaler
    pca: PCA
    kmeans: KMeans
    remap: dict[int, int]
    silhouette: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def k(self) -> int:
        return int(self.kmeans.n_clusters)

    def scores(self, df: pd.DataFrame) -> np.ndarray:
        """PCA scores of rows (features + batch column); unseen sites harmonised label-free."""
        X = df.reindex(columns=self.features).astype(float)
        X[self.batch] = df[self.batch].astype(str).to_numpy()
        Z = self.scaler.transform(np.asarray(self.combat.transform(self.imputer.transform(X))))
        return self.pca.transform(Z)

    def assign(self, df: pd.DataFrame) -> np.ndarray:
        """Subtype 1..k (1 = the largest discovery cluster) of each row."""
        lab = self.kmeans.predict(self.scores(df))
        return np.array([self.remap[int(v)] for v in lab])


def fit_subtypes(
    df: pd.DataFrame,
    features: list[str],
    batch: str,
    *,
    seed: int,
    k_range: range = range(2, 7),
    variance: float = 0.8,
    max_components: int = 20,
    min_fraction: float = 0.05,
    combat: bool = True,
) -> tuple[SubtypeModel, np.ndarray]:
    """Fit the embedding and k-means on these (discovery) rows; returns (model, subtypes)."""
    X = df[features].astype(float).copy()
    X[batch] = df[batch].astype(str).to_numpy()
    imputer = FrameImputer(batch).fit(X)
    Xi = imputer.transform(X)
    harm = ComBatHarmoniser(batch=batch, enabled=combat, as_frame=False).fit(Xi)
    H = np.asarray(harm.transform(Xi))
    scaler = StandardScaler().fit(H)
    Z = scaler.transform(H)
    full = PCA(random_state=0).fit(Z)
    k = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), variance) + 1)
    k = max(2, min(k, max_components, Z.shape[1], Z.shape[0] - 1))
    pca = PCA(n_components=k, random_state=0).fit(Z)
    scores = pca.transform(Z)
    n_clusters, sil = choose_k(scores, k_range, seed, min_fraction)
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(scores)
    sizes = pd.Series(km.labels_).value_counts().sort_index()
    order = sizes.sort_values(ascending=False, kind="stable").index
    remap = {int(old): new + 1 for new, old in enumerate(order)}
    sil = sil.assign(selected=sil["k"] == n_clusters)
    model = SubtypeModel(list(features), batch, imputer, harm, scaler, pca, km, remap, sil)
    return model, np.array([remap[int(v)] for v in km.labels_])


def subtype_test(subtype: np.ndarray, y: np.ndarray) -> dict:
    """Subtype x marker: Fisher's exact test (2 x 2) or chi-square, with the counts."""
    tab = pd.crosstab(pd.Series(subtype, name="subtype"), pd.Series(y, name="y"))
    detail = "; ".join(
        f"subtype {s}: {int(tab.loc[s].get(1, 0))}/{int(tab.loc[s].sum())} positive"
        for s in tab.index
    )
    if tab.shape[0] < 2 or tab.shape[1] < 2:
        return {"test": "subtype", "feature": "kmeans_subtype", "n": int(len(y)),
                "statistic": np.nan, "p_value": np.nan, "detail": detail}  # fmt: skip
    if tab.shape == (2, 2):
        stat, p = fisher_exact(tab.to_numpy())
        name = "fisher"
    else:
        stat, p = chi2_contingency(tab.to_numpy())[:2]
        name = "chi2"
    return {"test": f"subtype_{name}", "feature": "kmeans_subtype", "n": int(len(y)),
            "statistic": float(stat), "p_value": float(p), "detail": detail}  # fmt: skip


def feature_tests(values: pd.DataFrame, y: np.ndarray) -> list[dict]:
    """Kruskal-Wallis of each column between marker classes (rows with a value only)."""
    rows = []
    for col in values.columns:
        v = values[col].to_numpy(float)
        ok = ~np.isnan(v)
        a, b = v[ok & (y == 1)], v[ok & (y == 0)]
        if len(a) < 2 or len(b) < 2 or np.ptp(v[ok]) == 0:
            stat, p = np.nan, np.nan
        else:
            stat, p = kruskal(a, b)
        detail = (
            f"median {np.median(a):.3g} positive vs {np.median(b):.3g} negative"
            if len(a) and len(b)
            else ""
        )
        rows.append({"test": "kruskal", "feature": col, "n": int(ok.sum()),
                     "statistic": float(stat), "p_value": float(p), "detail": detail})  # fmt: skip
    return rows


def association_table(subtype: np.ndarray, tested: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Every test of the strategy with BH q-values across all of them."""
    rows = [subtype_test(subtype, y), *feature_tests(tested, y)]
    df = pd.DataFrame(rows)
    df["q_value"] = bh_fdr(df["p_value"].to_numpy())
    return df[TEST_COLUMNS]
