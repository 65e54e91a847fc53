#!/usr/bin/env bash
# Set up .venv with the CPU build of torch and disinfo-clf (editable, with its dev extra).
# Idempotent: a second run reuses what is installed and only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The CPU build, installed before the package so that pip never pulls the CUDA build of torch.
# Here pip finds torch 2.13.0's CPU wheel locally; elsewhere, point TORCH_INDEX_URL at the CPU index
# (TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu) or at the CUDA build you want.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.disinfo-clf-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $TORCH_SPEC $TORCH_INDEX_URL"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setting up .venv (first run takes a few minutes)..." >&2
  .venv/bin/python -m pip install -qq --disable-pip-version-check ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
  .venv/bin/python -m pip install -qq --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi
