#!/usr/bin/env bash
# GPU check (issue #23 point 8): bf16 GRPO step time and peak GPU memory of the full-depth
# Qwen2.5-VL-3B architecture (random weights), stock trl.GRPOTrainer vs SpatialGRPOTrainer with
# mirror pairs, each with HF generation and with vLLM colocated. One H100, under 10 minutes.
#
#   bash benchmarks/gpu/check.sh OUT_DIR              # on a GPU machine
#   bash benchmarks/gpu/check.sh OUT_DIR --cpu-smoke  # the same logic on a CPU: 1+1 layers, HF legs only
#
# Prints one table and writes OUT_DIR/summary.json (plus one JSON per leg). Each leg runs in its own
# process under a time limit (LEG_TIMEOUT_HF / LEG_TIMEOUT_VLLM seconds); a leg that fails or times
# out is reported as such and the others still run. See benchmarks/gpu/README.md.
set -uo pipefail

OUT=${1:?usage: bash benchmarks/gpu/check.sh OUT_DIR [--cpu-smoke]}
SMOKE=${2:-}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # absolute: the script runs from the repository root
cd "$(dirname "$0")/../.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$OUT"
STEP=benchmarks/gpu/trainer_step.py

if [ "$SMOKE" = "--cpu-smoke" ]; then
    BUILD_ARGS="--text-layers 1 --vision-layers 1 --dtype float32"
    LEG_ARGS="--cpu-smoke --steps 2 --pairs 1 --generations 2 --new-tokens 4 --size 224"
    HF_LIMIT=${LEG_TIMEOUT_HF:-900}
elif [ -n "$SMOKE" ]; then
    echo "unknown option $SMOKE (only --cpu-smoke)" >&2; exit 2
else
    BUILD_ARGS="--device cuda"
    LEG_ARGS=""
    HF_LIMIT=${LEG_TIMEOUT_HF:-100}
fi
VLLM_LIMIT=${LEG_TIMEOUT_VLLM:-170}

start=$(date +%s)
# shellcheck disable=SC2086
$PY $STEP build --out "$OUT/model" $BUILD_ARGS || { echo "build failed" >&2; exit 1; }
for generation in hf vllm; do
    limit=$HF_LIMIT; [ "$generation" = vllm ] && limit=$VLLM_LIMIT
    for trainer in stock spatial; do
        rm -f "$OUT/$trainer-$generation.json"
        # shellcheck disable=SC2086
        timeout --signal=KILL "$limit" $PY $STEP leg --model "$OUT/model" --trainer $trainer \
            --generation $generation --out "$OUT/$trainer-$generation.json" $LEG_ARGS \
            > "$OUT/$trainer-$generation.log" 2>&1
        echo "leg $trainer-$generation: exit $? ($(($(date +%s) - start)) s so far; log $OUT/$trainer-$generation.log)"
    done
done
$PY $STEP report --dir "$OUT"
status=$?
rm -rf "$OUT/model"/*.safetensors  # the random weights (7.5 GB at full depth) are of no further use
echo "total $(($(date +%s) - start)) s"
exit $status
