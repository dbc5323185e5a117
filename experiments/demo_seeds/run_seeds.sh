#!/usr/bin/env bash
# Four seeds of the default demo, one run directory each, then the summary table.
#   bash experiments/demo_seeds/run_seeds.sh [ROOT]   (ROOT default /tmp/demo-seeds; run alone on the machine)
set -euo pipefail
ROOT=${1:-/tmp/demo-seeds}
for seed in 0 1 2 3; do
  .venv/bin/python -m spatialrl demo --out "$ROOT/D$seed" --seed "$seed" --set report=false
done
.venv/bin/python experiments/demo_seeds/summarise.py "$ROOT"/D0 "$ROOT"/D1 "$ROOT"/D2 "$ROOT"/D3
