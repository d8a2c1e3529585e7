"""Report stage: QC outliers, ComBat site effect, feature summary, markers, benchmarks, tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from radiogenomics.report import benchmarks, cohorts, collect, features, markers, qc

# --- QC -------------------------------------------------------------------------------------------


def _write_metrics(root: Path, cohort: str, subject: str, values: dict) -> Path:
    path = root / cohort / f"sub-{subject}" / "ses-01" / "qc" / "metrics.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([values]).to_csv(path, sep="\t", index=False)
    return path


def test_robust_z_matches_hand_computation():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD median(|x-3|) = median(2,1,0,1,97) = 1
    np.testing.assert_allclose(qc.robust_z(x), 0.6745 * (x - 3.0))
    # MAD zero -> mean absolute deviation fallback: median 5, mean |x-5| = 10/5 = 2
    y = np.array([5.0, 5.0, 5.0, 5.0, 15.0])
    np.testing.assert_allclose(qc.robust_z(y), (y - 5.0) / (1.253314 * 2.0))
    assert np.all(qc.robust_z(np.full(6, 7.0)) == 0)


def test_planted_qc_outlier_is_the_only_one_flagged(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(30):
        snr = 20 + rng.normal(0, 1)
        volume = 30 + rng.normal(0, 3)
        if i == 17:
            snr = 2.0  # planted: a failed acquisition
        paths.append(
            _write_metrics(
                tmp_path,
                "a" if i < 15 else "b",
                f"S{i:02d}",
                {"snr": snr, "tumour_volume_ml": volume},
            )
        )
    failed = tmp_path / "b" / "sub-FAIL" / "ses-01" / "qc" / "metrics.tsv"
    failed.parent.mkdir(parents=True)
    failed.touch()  # placeholder of a failed subject
    table = qc.flag_outliers(qc.collect_qc_metrics([*paths, failed]), threshold=3.5)
    assert len(table) == 31
    flagged = set(table.loc[table["outlier"], "subject"])
    assert flagged == {"S17", "FAIL"}
    row = table.set_index("subject").loc["S17"]
    assert row["outlier_metrics"].startswith("snr (z=-")
    assert table.set_index("subject").loc["FAIL", "qc_status"] == "failed"
    qc.qc_metrics_figure(table, tmp_path / "qc.png")
    assert (tmp_path / "qc.png").stat().st_size > 10_000


def test_long_metric_tables_become_columns(tmp_path):
    path = tmp_path / "c" / "sub-X" / "ses-02" / "qc" / "metrics.tsv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {"sequence": ["t1", "flair"], "metric": ["snr", "snr"], "value": [11.0, 9.5]}
    ).to_csv(path, sep="\t", index=False)
    table = qc.collect_qc_metrics([path])
    assert table.loc[0, ["cohort", "subject", "session"]].tolist() == ["c", "X", "02"]
    assert table.loc[0, "t1_snr"] == 11.0 and table.loc[0, "flair_snr"] == 9.5


def test_overlays_outliers_first_and_capped(tmp_path):
    overlays = []
    for s in ("A", "B", "C", "D"):
        p = tmp_path / "k" / f"sub-{s}" / "ses-01" / "qc" / "overlay.png"
        p.parent.mkdir(parents=True)
        p.write_bytes(b"png" if s != "B" else b"")  # B failed: empty placeholder
        overlays.append(p)
    flags = pd.DataFrame(
        {
            "cohort": ["k"] * 4,
            "subject": list("ABCD"),
            "session": ["01"] * 4,
            "outlier": [False, False, False, True],
        }
    )
    chosen = qc.select_overlays(flags, overlays, max_n=2)
    assert [qc.overlay_name(p) for p in chosen] == ["k_sub-D_ses-01", "k_sub-A_ses-01"]


# --- Cohorts --------------------------------------------------------------------------------------


def test_cohort_counts_and_label_availability(tmp_path):
    rows = [
        ("a", "1", "01", "ok", "mutant"),
        ("a", "2", "01", "ok", "wildtype"),
        ("a", "2", "02", "ok", "wildtype"),
        ("a", "3", "01", "images_without_labels", ""),
        ("a", "4", "01", "failed:intake", "mutant"),
        ("a", "5", "", "labels_without_images", "mutant"),
        ("b", "9", "01", "ok", ""),
    ]
    df = pd.DataFrame(rows, columns=["cohort", "subject", "session", "status", "label_idh"])
    path = tmp_path / "intake_report.tsv"
    df.to_csv(path, sep="\t", index=False)
    report = cohorts.read_intake_report(path)
    counts = cohorts.cohort_counts(report, {"a": "site_a"}).set_index("cohort")
    assert counts.loc["a"].to_dict() == {
        "site": "site_a",
        "subjects": 4,
        "sessions": 5,
        "ok": 3,
        "images_without_labels": 1,
        "failed": 1,
        "labels_without_images": 1,
    }
    assert counts.loc["b", "site"] == "b"
    avail = cohorts.label_availability(report).set_index(["cohort", "marker"])
    assert avail.loc[("a", "idh"), "known"] == 3 and avail.loc[("a", "idh"), "subjects"] == 4
    assert avail.loc[("a", "idh"), "classes"] == "mutant: 2; wildtype: 1"
    assert avail.loc[("a", "mgmt"), "known"] == 0
    cohorts.cohort_overview_figure(
        cohorts.cohort_counts(report, {}),
        cohorts.label_availability(report),
        tmp_path / "overview.png",
    )
    assert (tmp_path / "overview.png").stat().st_size > 10_000


# --- Features -------------------------------------------------------------------------------------


def _feature_table(n_per_site: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for site_i, site in enumerate(("s1", "s2")):
        for j in range(n_per_site):
            feats = rng.normal(0, 1, 6) + shift * site_i
            rows.append(
                {
                    "cohort": site,
                    "subject": f"{site}{j}",
                    "session": "01",
                    **{f"histogram__t1__whole_tumor__p{k}": v for k, v in enumerate(feats[:4])},
                    "lesion_wide__all__whole_tumor__volume": feats[4],
                    "lesion_wide__adc__whole_tumor__median": np.nan if j % 2 else feats[5],
                    "prov__software": "x",
                    "qc_reason": "",
                }
            )
    return pd.DataFrame(rows)


def test_site_effect_visible_before_and_gone_after_centering():
    before = _feature_table(25, shift=4.0, seed=3)
    after = before.copy()
    cols = features.feature_columns(before)
    # "harmonised": remove each site's mean (what ComBat's location step does)
    after[cols] = after[cols] - after.groupby("cohort")[cols].transform("mean")
    table = features.combat_pca_table(before, after, {})
    r2 = {
        n: features.site_r2(g[["pc1", "pc2"]].to_numpy(), g["site"].to_numpy())
        for n, g in table.groupby("table")
    }
    assert r2["before"] > 0.6
    assert r2["after"] < 0.05


def test_pca_explains_rank_one_data():
    t = np.linspace(-1, 1, 40)
    df = pd.DataFrame({f"f__a__b__{i}": (i + 1) * t for i in range(5)})
    _, ratio = features.pca_scores(df, list(df.columns))
    assert ratio[0] == pytest.approx(1.0, abs=1e-9)


def test_feature_family_summary_counts_and_missing():
    df = _feature_table(5, 0.0, 0)
    summary = features.feature_family_summary(df).set_index("family")
    assert summary.loc["histogram", "features"] == 4
    assert summary.loc["lesion_wide", "features"] == 2
    assert summary.loc["lesion_wide", "sequences"] == "adc, all"
    # the adc median is NaN for j = 1, 3 of each site's 5 rows: 4 of 10 rows x 2 columns -> 20 %
    assert summary.loc["lesion_wide", "missing_pct"] == pytest.approx(20.0)
    assert summary.loc["histogram", "missing_pct"] == 0


def test_icc_histogram_stats(tmp_path):
    icc = pd.DataFrame({"feature": list("abcd"), "icc": [0.95, 0.8, 0.5, 0.2]})
    stats = features.icc_histogram(icc, tmp_path / "icc.png")
    assert stats == {"features": 4.0, "median_icc": pytest.approx(0.65), "share_ge_0.75": 0.5}


# --- Markers --------------------------------------------------------------------------------------


def test_metrics_summary_formats():
    wide = pd.DataFrame([{"n": 40, "n_pos": 12, "auc": 0.8, "auc_ci_low": 0.7, "auc_ci_high": 0.9}])
    assert markers.metrics_summary(wide) == {
        "n": 40,
        "n_pos": 12,
        "auc": 0.8,
        "auc_ci_low": 0.7,
        "auc_ci_high": 0.9,
    }
    repeats = pd.DataFrame({"repeat": range(5), "auc": [0.6, 0.7, 0.8, 0.9, 1.0], "n": 30})
    s = markers.metrics_summary(repeats)
    assert s["auc"] == pytest.approx(0.8)
    assert s["auc_ci_low"] == pytest.approx(0.61) and s["auc_ci_high"] == pytest.approx(0.99)
    long = pd.DataFrame({"metric": ["auc", "brier", "other"], "value": [0.75, 0.2, 3]})
    assert markers.metrics_summary(long) == {"auc": 0.75, "brier": 0.2}


def test_marker_summary_with_review_and_validation(tmp_path, project_root):
    for marker, strategy, auc in (
        ("idh", "lesion_wide", 0.9),
        ("idh", "radiomics", 0.85),
        ("mgmt", "habitats", 0.6),
    ):
        d = tmp_path / "markers" / marker / strategy
        d.mkdir(parents=True)
        pd.DataFrame(
            [
                {
                    "n": 50,
                    "n_pos": 20,
                    "auc": auc,
                    "auc_ci_low": auc - 0.1,
                    "auc_ci_high": min(auc + 0.05, 1),
                }
            ]
        ).to_csv(d / "cv_metrics.tsv", sep="\t", index=False)
    v = tmp_path / "validation" / "idh" / "cohort_b"
    v.mkdir(parents=True)
    pd.DataFrame({"harmonisation": ["none", "ref_batch"], "auc": [0.7, 0.82]}).to_csv(
        v / "metrics.tsv", sep="\t", index=False
    )
    cv = markers.collect_marker_metrics(tmp_path / "markers")
    val = markers.collect_validation_metrics(tmp_path / "validation")
    review = markers.load_review_reference(project_root / "config" / "review_reference.yaml")
    configured = set(yaml.safe_load((project_root / "config" / "markers.yaml").read_text())
                     ["markers"])  # fmt: skip
    assert set(review["marker"]) == configured | {"habitats"}
    figs = review.dropna(subset=["review_value"])
    value = {(m, k): sorted(g["review_value"]) for (m, k), g in figs.groupby(["marker", "method"])}
    assert value[("idh", "radiomics")] == [0.889] and value[("idh", "cnn")] == [0.94]
    assert value[("codeletion_1p19q", "cnn")] == [0.92]
    assert value[("mgmt", "supervised radiomics")] == [0.6, 0.8]
    assert value[("egfr_amplification", "histogram / supervised radiomics")] == [0.78]
    habitats = sorted(figs.loc[figs["marker"] == "habitats", "review_value"])
    assert habitats == [1.22, 3.78, 4.55, 40.0]
    summary = markers.marker_summary(cv, val, review)
    assert summary["marker"].tolist() == ["idh", "idh", "mgmt"]  # canonical marker order
    idh = summary[summary["strategy"] == "lesion_wide"].iloc[0]
    assert idh["cv_auc_ci"] == "0.90 (0.80-0.95)"
    assert idh["validation_auc"] == "cohort_b [none]: 0.70; cohort_b [ref_batch]: 0.82"
    assert "T2-FLAIR mismatch" in idh["review_strategy"]
    side = markers.review_comparison(cv.assign(model="x"), review)
    rad = side[(side["marker"] == "idh") & (side["review_method"] == "radiomics")]
    assert rad["this_run"].tolist() == ["radiomics (n=50)"] and rad["review_value"].iloc[0] == 0.889
    markers.marker_summary_figure(cv, val, review, tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 10_000


# --- Benchmarks and collection -------------------------------------------------------------------


def test_summarise_benchmarks(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    per_subject = tmp_path / "segment_tumor"
    per_subject.mkdir()
    for i, (s, rss) in enumerate(((10.0, 500.0), (30.0, 700.0), (20.0, 650.5))):
        (per_subject / f"c_S{i}_01.tsv").write_text(
            header + f"{s}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t0\t1\n"
        )
    (tmp_path / "aggregate.tsv").write_text(header + "5.5\t0:00:05\tNA\t-\t-\t-\t-\t-\t-\t-\n")
    summary = benchmarks.summarise_benchmarks(tmp_path).set_index("rule")
    assert summary.loc["segment_tumor", "n"] == 3
    assert summary.loc["segment_tumor", "median_s"] == 20.0
    assert summary.loc["segment_tumor", "total_s"] == 60.0
    assert summary.loc["segment_tumor", "max_rss_mb"] == 700.0
    assert summary.loc["aggregate", "median_s"] == 5.5 and np.isnan(
        summary.loc["aggregate", "max_rss_mb"]
    )
    assert list(summary.index) == ["segment_tumor", "aggregate"]  # slowest first
    md = benchmarks.markdown_table(summary.reset_index())
    assert "| segment_tumor | 3 | 20.0 | 30.0 | 60.0 | 700.0 |" in md


def test_collect_section_renders_tables_and_skips_placeholders(tmp_path):
    root = tmp_path / "results" / "markers"
    (root / "idh" / "lasso").mkdir(parents=True)
    # Figures are report items of their own rules: the section renders only the tables.
    (root / "idh" / "lasso" / "roc.png").write_bytes(b"\x89PNG fake")
    pd.DataFrame({"auc": [0.8]}).to_csv(
        root / "idh" / "lasso" / "cv_metrics.tsv", sep="\t", index=False
    )
    (root / "idh" / "lasso" / "coefficients.tsv").write_bytes(b"")  # failed step placeholder
    (root / "idh" / "lasso" / "model.joblib").write_bytes(b"x")
    overlay = tmp_path / "overlay.png"
    overlay.write_bytes(b"\x89PNG fake")
    done = collect.collect_section(root, tmp_path / "out", extra=[(overlay, "subjects", "s1")])
    assert sorted(
        done["report_file"].map(lambda p: Path(p).relative_to(tmp_path / "out").as_posix())
    ) == ["idh/lasso__cv_metrics.html", "subjects/s1.png"]
    assert "<td>0.8</td>" in (tmp_path / "out" / "idh" / "lasso__cv_metrics.html").read_text()
