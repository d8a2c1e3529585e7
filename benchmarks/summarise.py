"""Per-rule runtime and memory from Snakemake benchmark files (benchmarks/rules/**.tsv).

Usage: .venv/bin/python benchmarks/summarise.py [benchmarks/rules] [--markdown] [--out table.tsv]
Prints one row per rule: jobs (n), median/max/total wall seconds and the largest peak RSS in MB.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from radiogenomics.io import write_tsv  # noqa: E402
from radiogenomics.report.benchmarks import markdown_table, summarise_benchmarks  # noqa: E402


def main() -> int:
    """Summarise the benchmark folder as TSV (stdout or --out) or a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Snakemake writes benchmarks/rules in the run directory: the current folder by default.
    parser.add_argument("root", nargs="?", default="benchmarks/rules")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--out", help="write the table as TSV here")
    args = parser.parse_args()
    summary = summarise_benchmarks(args.root)
    if args.out:
        write_tsv(summary, args.out)
    if args.markdown:
        sys.stdout.write(markdown_table(summary))
    elif not args.out:
        summary.to_csv(sys.stdout, sep="\t", index=False, float_format="%.2f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
