"""Write config/README.md from workflow/schemas/*.schema.yaml (`--check`: exit 1 if it is stale)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from radiogenomics.report.config_docs import config_docs  # noqa: E402


def main() -> int:
    """Generate (or check) the configuration reference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when stale")
    parser.add_argument("--out", default=str(ROOT / "config" / "README.md"))
    args = parser.parse_args()
    text = config_docs(ROOT / "workflow" / "schemas")
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is stale: run .venv/bin/python scripts/config_docs.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
