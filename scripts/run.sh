#!/usr/bin/env bash
# Run the disinfo-clf command (after setting up .venv if needed), e.g.
#   bash scripts/run.sh predict "NATO promised not to expand east and lied."
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup.sh"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec "$here/.venv/bin/disinfo-clf" "$@"
