#!/usr/bin/env bash
# Build .venv idempotently: a second run with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
EXTRAS=${1:-dev}
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS
if [[ -f "$STAMP" ]]; then
    echo "install: .venv up to date" >&2
    exit 0
fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip>=24" setuptools wheel
# torch==2.13.0 first and as a constraint: any other torch spec pulls multi-GB CUDA builds.
echo "torch==2.13.0" > .venv/torch-constraint.txt
.venv/bin/python -m pip install --quiet -c .venv/torch-constraint.txt "torch==2.13.0"
.venv/bin/python -m pip install --quiet -c .venv/torch-constraint.txt -e ".[$EXTRAS]"
# nnunetv2 drags in a torchvision built for CUDA torch that fails to import beside the CPU torch;
# the plain U-Net path used here never imports it.
.venv/bin/python -m pip uninstall --quiet -y torchvision 2>/dev/null || true
rm -f .venv/.installed-*
touch "$STAMP"
echo "install: done ($(du -sh .venv | cut -f1))" >&2
