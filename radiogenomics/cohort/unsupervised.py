"""Unsupervised subtypes (cohort stage): PCA, k-means with k by silhouette, heatmap vs markers.

For heterogeneous markers (MGMT, EGFR) the review favours looking for imaging subtypes first and
asking afterwards whether they carry the marker. Labels never enter the clustering; they only
annotate the heatmap and the association table.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from scipy.cluster.hierarchy import leaves_list, linkage  # noqa: E402
from scipy.stats import chi2_contingency, fisher_exact  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from radiogenomics.cohort.common import baseline_rows, read_inputs, select_features  # noqa: E402
from radiogenomics.cohort.harmonise import ComBatHarmoniser, FrameImputer  # noqa: E402
from radiogenomics.figures import message_figure, save_figure  # noqa: E402
from radiogenomics.labels import MARKERS, marker_binary  # noqa: E402


def embed(
    X: pd.DataFrame, batch: str, variance: float = 0.8, max_components: int = 20, combat=True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z-scored harmonised features, PCA scores, explained variance ratios)."""
    Xi = FrameImputer(batch).fit(X).transform(X)
    Xh = ComBatHarmoniser(batch=batch, enabled=combat).fit(Xi).transform(Xi)
    Z = StandardScaler().fit_transform(Xh.to_numpy(float))
    full = PCA(random_state=0).fit(Z)
    k = int(np.searchsorted(np.cumsum(full.explained_variance_ratio_), variance) + 1)
    k = max(2, min(k, max_components, Z.shape[1], Z.shape[0] - 1))
    pca = PCA(n_components=k, random_state=0).fit(Z)
    return Z, pca.transform(Z), pca.explained_variance_ratio_


def choose_k(
    scores: np.ndarray, k_range: range, seed: int, min_fraction: float = 0.0
) -> tuple[int, pd.DataFrame]:
    """k with the highest silhouette over `k_range` (k-means, seeded, 10 restarts).

    A k whose smallest cluster holds fewer than `min_fraction` of the subjects is not eligible:
    silhouette happily rewards splitting off a single outlier, which is not a subtype.
    """
    rows = []
    for k in k_range:
        if k >= len(scores):
            break
        lab = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scores)
        smallest = int(np.bincount(lab).min())
        rows.append({
            "k": k,
            "silhouette": float(silhouette_score(scores, lab)),
            "smallest_cluster": smallest,
            "eligible": smallest >= min_fraction * len(scores),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=["k", "silhouette", "smallest_cluster", "eligible"])
    pool = table[table["eligible"]] if table["eligible"].any() else table.iloc[:1]
    best = int(pool.loc[pool["silhouette"].idxmax(), "k"])
    return best, table


def subtypes(scores: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels 1..k, renumbered by cluster size (largest = 1) so they are stable."""
    lab = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scores)
    order = pd.Series(lab).value_counts().sort_index().sort_values(ascending=False, kind="stable")
    remap = {old: new + 1 for new, old in enumerate(order.index)}
    return np.array([remap[v] for v in lab])


def association(subtype: np.ndarray, labels: pd.DataFrame) -> pd.DataFrame:
    """Subtype vs each marker: counts and chi-square (Fisher for 2x2) p-value."""
    rows = []
    for marker in MARKERS:
        if marker not in labels.columns:
            continue
        y = marker_binary(labels[marker], marker).to_numpy()
        ok = ~np.isnan(y)
        if ok.sum() < 4 or len(set(y[ok])) < 2 or len(set(subtype[ok])) < 2:
            continue
        tab = pd.crosstab(subtype[ok], y[ok])
        if tab.shape == (2, 2):
            p = float(fisher_exact(tab.to_numpy())[1])
            test = "fisher"
        else:
            p = float(chi2_contingency(tab.to_numpy())[1])
            test = "chi2"
        for st in tab.index:
            rows.append(
                {
                    "marker": marker,
                    "subtype": int(st),
                    "n": int(tab.loc[st].sum()),
                    "n_positive": int(tab.loc[st].get(1.0, 0)),
                    "fraction_positive": float(tab.loc[st].get(1.0, 0) / tab.loc[st].sum()),
                    "test": test,
                    "p_value": p,
                }
            )
    cols = ["marker", "subtype", "n", "n_positive", "fraction_positive", "test", "p_value"]
    return pd.DataFrame(rows, columns=cols)


def heatmap(
    path, Z: np.ndarray, names: list[str], subtype: np.ndarray, labels: pd.DataFrame, top: int = 40
) -> None:
    """Clustered heatmap of the most variable features; rows by subtype, marker annotation bars."""
    var = Z.var(axis=0)
    idx = np.argsort(-var, kind="stable")[: min(top, Z.shape[1])]
    sub = Z[:, idx]
    col_order = leaves_list(linkage(sub.T, "average")) if sub.shape[1] > 2 else np.arange(len(idx))
    row_order = np.lexsort((np.arange(len(subtype)), subtype))
    markers = [m for m in MARKERS if m in labels.columns]
    fig = plt.figure(figsize=(9, 7))
    n_ann = 1 + len(markers)
    gs = fig.add_gridspec(1, n_ann + 1, width_ratios=[0.25] * n_ann + [8], wspace=0.05)
    ann = [("subtype", subtype.astype(float))] + [
        (m, marker_binary(labels[m], m).to_numpy()) for m in markers
    ]
    for i, (name, vals) in enumerate(ann):
        ax = fig.add_subplot(gs[0, i])
        cmap = "tab10" if name == "subtype" else ListedColormap(["#dddddd", "#d62728"])
        ax.imshow(vals[row_order, None], aspect="auto", cmap=cmap, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, rotation=90, fontsize=7)
    ax = fig.add_subplot(gs[0, -1])
    im = ax.imshow(
        np.clip(sub[row_order][:, col_order], -3, 3),
        aspect="auto",
        cmap="RdBu_r",
        interpolation="nearest",
    )
    ax.set_yticks([])
    ax.set_xticks(range(len(col_order)))
    ax.set_xticklabels([names[idx[j]][-40:] for j in col_order], rotation=90, fontsize=5)
    fig.colorbar(im, ax=ax, fraction=0.03, label="z-score")
    save_figure(fig, path)


def not_applicable_reason(n_rows: int, n_features: int, min_subjects: int) -> str:
    """Why clustering does not apply (too few discovery subjects or no features), else ''."""
    if n_rows < min_subjects:
        return (
            f"{n_rows} discovery subject(s) with features "
            f"< unsupervised.min_subjects {min_subjects}"
        )
    if n_features == 0:
        return "no feature matches unsupervised.features"
    return ""


def write_not_run(out, rows: pd.DataFrame, reason: str) -> None:
    """Every output of the stage, saying why it did not run."""
    from radiogenomics.io import write_tsv

    status = {"status": "not_run", "reason": reason}
    table = rows[["cohort", "subject", "session"]].assign(subtype=np.nan, **status)
    write_tsv(table, out / "subtypes.tsv")
    for name in ("silhouette", "pca_variance", "association"):
        write_tsv(pd.DataFrame([status]), out / f"{name}.tsv")
    for name in ("heatmap", "pca"):
        message_figure(out / f"{name}.png", f"unsupervised subtypes not run: {reason}")


def run_unsupervised(
    features: str, labels: str, dropped: str | None, settings: dict, outdir: str
) -> None:
    """Rule unsupervised_subtypes: subtypes, silhouette, PCA variance, association, heatmap."""
    from pathlib import Path

    from radiogenomics.io import write_tsv

    out = Path(outdir)
    u = settings["unsupervised"]
    batch = settings["combat"]["batch_column"]
    feats, labs, drop = read_inputs(features, labels, dropped)
    rows = baseline_rows(feats[feats["role"] == "discovery"])
    cols = select_features(list(feats.columns), tuple(u["features"]), drop)
    lab = rows[["cohort", "subject"]].merge(labs, on=["cohort", "subject"], how="left")
    reason = not_applicable_reason(len(rows), len(cols), int(u["min_subjects"]))
    if reason:
        write_not_run(out, rows, reason)
        return
    X = rows[cols].astype(float)
    X[batch] = rows[batch].astype(str).to_numpy()
    seed = int(settings["seed"])
    Z, scores, evr = embed(
        X, batch, u["variance"], u["max_components"], settings["combat"]["enabled"]
    )
    k, sil = choose_k(scores, range(u["k_min"], u["k_max"] + 1), seed, u["min_cluster_fraction"])
    st = subtypes(scores, k, seed)
    table = rows[["cohort", "subject", "session"]].copy()
    table["subtype"] = st
    for i in range(min(3, scores.shape[1])):
        table[f"pc{i + 1}"] = scores[:, i]
    write_tsv(table, out / "subtypes.tsv")
    sil["selected"] = sil["k"] == k
    write_tsv(sil, out / "silhouette.tsv")
    write_tsv(
        pd.DataFrame({"component": np.arange(1, len(evr) + 1), "explained_variance_ratio": evr}),
        out / "pca_variance.tsv",
    )
    write_tsv(association(st, lab), out / "association.tsv")
    heatmap(out / "heatmap.png", Z, cols, st, lab, u["heatmap_top"])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for s in sorted(set(st)):
        ax.scatter(scores[st == s, 0], scores[st == s, 1], s=8, label=f"subtype {s}")
    ax.set(xlabel="PC1", ylabel="PC2", title=f"k-means subtypes (k={k} by silhouette)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "pca.png")
