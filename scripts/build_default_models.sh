#!/usr/bin/env bash
# Rebuild the models shipped inside the package, and the top-level model card, from the vendored data.
#   bash scripts/build_default_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
models=disinfo_clf/resources/models
.venv/bin/disinfo-clf train --config configs/role-linear.yaml --output-dir "$models/roles-linear"
.venv/bin/disinfo-clf train --config configs/linear.yaml --output-dir "$models/narratives-linear"
cp "$models/narratives-linear/README.md" model_card.md
