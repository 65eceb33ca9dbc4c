#!/usr/bin/env bash
# Regenerates docs/BENCHMARKS.md and its figures (docs/bench/): the PagedAttention paper's evaluation
# on pagedc. Builds pagedc (scripts/setup.sh), exports the 125M-parameter Llama-shaped benchmark model
# with random weights (the fixtures venv: PyTorch + transformers, pinned) unless it is already there,
# compiles it with bf16 weights and KV cache, and runs `pagedc bench --suite paper` (about 30 minutes
# on 2 cores; the step-cost calibration is kept in docs/bench/cost_model.json and reused unless
# --recalibrate is passed). Extra arguments go to `pagedc bench`.
#   bash scripts/bench/paper_report.sh [--recalibrate] [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
BUILD_DIR="${PAGEDC_BUILD_DIR:-build}"
MODEL_DIR="${PAGEDC_BENCH_MODEL_DIR:-/tmp/bench-llama125m}"
if [ ! -f "$MODEL_DIR/model.onnx" ]; then
  bash scripts/fixtures/setup_venv.sh
  .venv-fixtures/bin/python scripts/fixtures/export_bench_model.py --out "$MODEL_DIR"
fi
if [ ! -f "$MODEL_DIR/model-bf16.pgc/manifest.json" ]; then
  "$BUILD_DIR/tools/pagedc" compile "$MODEL_DIR/model.onnx" -o "$MODEL_DIR/model-bf16.pgc" --dtype bf16
fi
"$BUILD_DIR/tools/pagedc" bench "$MODEL_DIR/model-bf16.pgc" --suite paper --report docs/BENCHMARKS.md --figures docs/bench \
  --threads "$(nproc)" "$@"
