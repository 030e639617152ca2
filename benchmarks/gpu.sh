#!/usr/bin/env bash
# One GPU at full speed: Swin-T bf16 at 224 and 64 px through the trainer's own step, one
# variant per lever (eager, fused attention, torch.compile default / reduce-overhead (CUDA
# graphs, static shapes) / max-autotune, batch 256/512/1024 at 64 px, DDP on 2+ GPUs), each
# with samples/s, time to first step, GPU busy %, peak memory. Fits a 10-minute device slot:
# no variant starts unless its estimate fits in --budget-s (default 480 s); the JSON is
# rewritten after each variant. Writes $OUT/gpu_results.json (or ./), an nvidia-smi snapshot
# and the log. Extra arguments go to benchmarks/gpu.py (e.g. --only max-autotune_224).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
mkdir -p "$out"
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv \
  > "$out/nvidia-smi.csv" 2>&1 || true
PYTHONPATH=. timeout "${GPU_BENCH_TIMEOUT_S:-540}" "$PY" benchmarks/gpu.py \
  --out "$out/gpu_results.json" "$@" 2>&1 | tee "$out/gpu_bench.log"
