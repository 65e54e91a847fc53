#!/usr/bin/env bash
# Run the whole test suite, slow tests included (after setting up .venv if needed).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` for a quick loop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The page's browser test (tests/test_serve_browser.py) drives Debian's chromium through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q "$@"
