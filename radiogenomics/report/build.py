"""Report stage: one entry point per report rule, reading run outputs and writing report items."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from radiogenomics.figures import message_figure
from radiogenomics.io import read_tsv, write_tsv
from radiogenomics.report import benchmarks, cohorts, features, markers, qc
from radiogenomics.report.collect import collect_section, copy_file
from radiogenomics.report.style import table_html, write_text
from radiogenomics.report.versions import software_versions

log = logging.getLogger("radiogenomics.report")


def build_cohorts(
    intake: str,
    failures: str,
    label_issues: list[str],
    sites: dict[str, str],
    out: dict[str, str],
    max_rows: int = 500,
) -> None:
    """Cohort overview figure, counts and label-availability tables, labels-table problems, and
    the failed subjects (results/qc/failures.tsv)."""
    report = cohorts.read_intake_report(intake)
    counts = cohorts.cohort_counts(report, sites)
    avail = cohorts.label_availability(report)
    fails = cohorts.read_failures(failures)
    issues = cohorts.read_label_issues(label_issues)
    log.info("cohorts: %d rows in intake report, %d failures", len(report), len(fails))
    cohorts.cohort_overview_figure(counts, avail, out["overview"])
    write_tsv(counts, out["counts"])
    write_text(
        table_html(counts, "Subjects per cohort, site and intake status"), out["counts_html"]
    )
    write_tsv(avail, out["labels"])
    write_text(
        table_html(avail, "Known labels per cohort and marker (imaged subjects)"),
        out["labels_html"],
    )
    write_text(
        table_html(
            issues,
            "Labels-table problems (results/qc/labels/{cohort}_issues.tsv)",
            note="No problem found." if issues.empty else f"{len(issues)} problem(s), by row.",
            max_rows=max_rows,
        ),
        out["label_issues_html"],
    )
    note = "No subject failed." if fails.empty else f"{len(fails)} subject/session(s) failed."
    write_text(
        table_html(
            fails,
            "Failures (results/qc/failures.tsv)",
            note=note,
            max_rows=max_rows,
            flag=pd.Series(True, index=fails.index),
        ),
        out["failures_html"],
    )


def build_qc(
    metrics: list[str],
    overlays: list[str],
    threshold: float,
    max_overlays: int,
    out: dict[str, str],
) -> None:
    """QC metrics of all subjects with outliers flagged, the QC figure and a capped overlay set."""
    table = qc.flag_outliers(qc.collect_qc_metrics(metrics), threshold)
    log.info("qc: %d subject/sessions, %d flagged", len(table), int(table["outlier"].sum()))
    write_tsv(table, out["table"])
    n_out = int(table["outlier"].sum())
    note = (
        f"{n_out} of {len(table)} subject/sessions flagged (modified z-score |z| > {threshold} on "
        "any metric, pooled over cohorts, or a failed subject); flagged rows first."
    )
    shown = table.sort_values("outlier", ascending=False, kind="stable")
    write_text(table_html(shown, "QC metrics", note=note, flag=shown["outlier"]), out["table_html"])
    qc.qc_metrics_figure(table, out["figure"])
    dest = Path(out["overlays"])
    dest.mkdir(parents=True, exist_ok=True)
    for src in qc.select_overlays(table, overlays, max_overlays):
        copy_file(src, dest / f"{qc.overlay_name(src)}.png")


def build_feature_families(features_tsv: str, out: dict[str, str]) -> None:
    """Feature-family summary table and figure."""
    df = read_tsv(features_tsv)
    summary = features.feature_family_summary(df)
    write_tsv(summary, out["table"])
    write_text(
        table_html(summary, f"Feature families ({len(df)} subject/sessions)"), out["table_html"]
    )
    features.feature_family_figure(summary, len(df), out["figure"])


def build_combat(
    before_tsv: str, after_tsv: str, sites: dict[str, str], out: dict[str, str]
) -> None:
    """PCA before/after ComBat coloured by site, with the scores table."""
    before, after = read_tsv(before_tsv), read_tsv(after_tsv)
    table = features.combat_pca_table(before, after, sites)
    write_tsv(table, out["table"])
    r2 = features.combat_pca_figure(table, out["figure"])
    log.info("combat: site R^2 of PC1-2 before %.3f after %.3f", r2["before"], r2["after"])


def build_icc(icc_tsv: str, out: dict[str, str]) -> None:
    """ICC histogram of the robustness table."""
    stats = features.icc_histogram(read_tsv(icc_tsv), out["figure"])
    log.info("icc: %s", stats)


def build_markdown(md_path: str, title: str, out_html: str) -> None:
    """A markdown document as an HTML report item."""
    write_text(features.markdown_html(Path(md_path).read_text(), title), out_html)


def build_section(
    root: str,
    dest: str,
    extra_overlays: list[str],
    max_overlays: int,
    max_rows: int,
) -> None:
    """Render one stage's tables (plus up to `max_overlays` subject overlays) for the report; the
    stage's figures are report items of their own rules."""
    usable = [p for p in sorted(extra_overlays) if Path(p).exists() and Path(p).stat().st_size]
    extra = [(p, "subjects", qc.overlay_name(p)) for p in usable[:max_overlays]]
    done = collect_section(root, dest, extra=extra, max_rows=max_rows)
    log.info("section %s: %d items collected into %s", root, len(done), dest)


def build_marker_summary(
    markers_root: str, validation_root: str, review_yaml: str, out: dict[str, str]
) -> None:
    """All markers side by side with the review's figures: table and figure."""
    cv = markers.collect_marker_metrics(markers_root)
    val = markers.collect_validation_metrics(validation_root)
    review = markers.load_review_reference(review_yaml)
    summary = markers.marker_summary(cv, val, review)
    write_tsv(summary, out["table"])
    write_text(
        table_html(
            summary,
            "Markers: every strategy, its role, verdict and subgroup",
            note="verdict: 'no evidence' when the out-of-fold AUC interval lies below 0.5, the "
            "primary's permutation p exceeds cohort.evidence_alpha, a comparison's interval "
            "reaches 0.5, or a subtypes strategy's smallest FDR q exceeds it; only a primary "
            "with evidence is selected. within / n_within: the subgroup the marker is analysed in.",
        ),
        out["table_html"],
    )
    comparison = markers.review_comparison(cv, review)
    write_tsv(comparison, out["review"])
    write_text(
        table_html(
            comparison,
            "The review's figures side by side with this run",
            note="Figures reported in 'Imaging Genomics of Glioma Revisited' (AJNR 2024) from the "
            "studies it cites (reference numbers): other cohorts and methods, context only, never "
            "a target. The review reports accuracy; this run's balanced accuracy is beside it "
            "(config/review_reference.yaml).",
        ),
        out["review_html"],
    )
    if cv.empty and val.empty:
        message_figure(out["figure"], "no marker metrics were produced in this run", "Markers")
    else:
        markers.marker_summary_figure(cv, val, review, out["figure"])


def build_run(benchmark_root: str, out: dict[str, str]) -> None:
    """Per-rule runtime/memory table and figure, and software versions."""
    summary = benchmarks.summarise_benchmarks(benchmark_root)
    write_tsv(summary, out["benchmarks"])
    write_text(
        table_html(
            summary,
            "Runtime and memory per rule (from benchmarks/rules)",
            note="seconds of wall time; max_rss_mb = largest peak resident memory of one job",
        ),
        out["benchmarks_html"],
    )
    benchmarks.benchmarks_figure(summary, out["benchmarks_figure"])
    versions = software_versions()
    write_tsv(versions, out["versions"])
    write_text(table_html(versions, "Software versions"), out["versions_html"])
