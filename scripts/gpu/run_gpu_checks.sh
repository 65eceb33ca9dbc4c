#!/usr/bin/env bash
# pagedc's GPU checks in one go, for the first machine with an NVIDIA GPU: builds pagedc, runs the
# tests that skip without a GPU (they must not skip here), the CUDA kernel benchmarks (paged
# attention bandwidth against the device's peak) and end-to-end decode throughput on the CUDA
# backend (CUDA graphs on and off, f32 and bf16), and prints the numbers.
#
#   scripts/gpu/run_gpu_checks.sh [build-dir]     (default: build-gpu; JOBS=n for the build)
#
# Needs: the NVIDIA driver (libcuda.so.1), the CUDA toolkit (NVRTC, nvJitLink, cuBLASLt) where
# CMake finds it, and the usual build dependencies (scripts/setup.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-$BUILD/gpu-checks}
mkdir -p "$OUT"
status=0
section() { printf '\n==== %s ====\n' "$*"; }

section "device"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv || true
else
  echo "nvidia-smi not found (the checks below still try libcuda.so.1)"
fi

section "build ($BUILD)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAGEDC_WERROR=ON >"$OUT/cmake.log"
ninja -C "$BUILD" -j "$JOBS" pagedc pagedc_unit_tests $(ninja -C "$BUILD" -t targets all | grep -q '^pagedc_kernel_tests:' && echo pagedc_kernel_tests)
PAGEDC=$BUILD/tools/pagedc
# One binary for machines with and without a GPU: libcuda must be loaded at run time, never linked.
if readelf -d "$PAGEDC" | grep -q 'libcuda\.so'; then
  echo "FAIL: $PAGEDC links libcuda (it must dlopen it)"; status=1
fi

section "GPU tests"
# The CUDA backend's tests; on a GPU none of them may skip.
"$BUILD/tests/pagedc_unit_tests" --gtest_filter='CudaDriver*:DeviceSelection*:CudaKernelPlan*:CudaBackend*' 2>&1 | tee "$OUT/unit.log" || status=1
if grep -q '^\[  SKIPPED \]' "$OUT/unit.log"; then
  echo "FAIL: tests skipped on a GPU machine:"; grep '^\[  SKIPPED \]' "$OUT/unit.log"; status=1
fi
if [ -x "$BUILD/tests/pagedc_kernel_tests" ]; then
  "$BUILD/tests/pagedc_kernel_tests" 2>&1 | tail -3 | tee "$OUT/kernel_tests.log" || status=1
fi

section "kernel benchmarks (paged attention, GPU bandwidth vs the device's peak)"
for cache in f16 bf16 f32; do
  "$PAGEDC" kernels bench --cache "$cache" --context 4096 --batch 32 --head-dims 64 128 --blocks 16 32 2>&1 | tee "$OUT/bench_$cache.log" || status=1
done

section "end-to-end decode throughput (bundled model, CUDA backend)"
MODEL_DIR=$OUT/models
mkdir -p "$MODEL_DIR"
for dtype in f32 bf16; do
  [ -d "$MODEL_DIR/default-$dtype.pgc" ] || "$PAGEDC" compile "$ROOT/models/default/model.onnx" --dtype "$dtype" -o "$MODEL_DIR/default-$dtype.pgc" >/dev/null
done
PROMPTS=$OUT/prompts.jsonl
python3 - "$PROMPTS" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(256):
        f.write(json.dumps({"prompt": f"Story {i}: once upon a time", "max_tokens": 256}) + "\n")
PY
for dtype in f32 bf16; do
  for graphs in --cuda-graphs --no-cuda-graphs; do
    echo "-- $dtype $graphs"
    "$PAGEDC" generate "$MODEL_DIR/default-$dtype.pgc" --device cuda $graphs --prompts "$PROMPTS" --ignore-eos --max-num-seqs 256 \
      >"$OUT/generate_${dtype}${graphs}.log" 2>"$OUT/generate_${dtype}${graphs}.err" || { status=1; tail -5 "$OUT/generate_${dtype}${graphs}.err"; }
    grep -E '^(pagedc: CUDA backend|generate:)' "$OUT/generate_${dtype}${graphs}.err" || true
  done
done
echo "-- CPU backend, for comparison"
"$PAGEDC" generate "$MODEL_DIR/default-f32.pgc" --device cpu --prompts "$PROMPTS" --ignore-eos --max-num-seqs 256 2>&1 >/dev/null | grep -E '^generate:' || true

section "result"
if [ "$status" -eq 0 ]; then echo "all GPU checks passed (logs in $OUT)"; else echo "some GPU checks FAILED (logs in $OUT)"; fi
exit "$status"
