"""Report stage: `report_categories` reads a real Snakemake HTML report of a tiny workflow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from radiogenomics.report.parse import report_categories, report_results

SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input:
            "alpha.txt",
            "beta",

    rule alpha:
        output:
            report("alpha.txt", category="Alpha", subcategory="one"),
        shell:
            "echo alpha > {output}"

    rule beta:
        output:
            report(directory("beta"), patterns=["{group}/{name}.txt"], category="Beta",
                   subcategory="{group}", labels={"item": "{name}"}),
        shell:
            "mkdir -p {output}/g1 {output}/g2 && echo 1 > {output}/g1/x.txt "
            "&& echo 2 > {output}/g1/y.txt && echo 3 > {output}/g2/z.txt"
    """
)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """Run the tiny workflow and build its report (about 10 s)."""
    wd = tmp_path_factory.mktemp("tiny_wf")
    (wd / "Snakefile").write_text(SNAKEFILE)
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "1",
        "-d",
        str(wd),
        "-s",
        str(wd / "Snakefile"),
    ]
    subprocess.run(snakemake, check=True, capture_output=True)
    subprocess.run(
        [*snakemake, "--report", str(wd / "report.html")], check=True, capture_output=True
    )
    return wd / "report.html"


def test_report_categories_counts_items_per_category(tiny_report):
    assert report_categories(tiny_report) == {"Alpha": 1, "Beta": 3}


def test_report_results_carry_the_pattern_wildcards(tiny_report):
    results = report_results(tiny_report)
    labels = sorted(r["labels"]["item"] for r in results.values() if r["labels"])
    assert labels == ["x", "y", "z"]


def test_not_a_report_is_a_clear_error(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body>hello</body></html>")
    with pytest.raises(ValueError, match="var categories"):
        report_categories(page)
