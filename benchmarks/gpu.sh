#!/usr/bin/env bash
# Issue 6 GPU benchmark for a lent GPU box (no network, no textual/tomli-w): Swin-T at 224 and
# 64 px, batch 256, bf16, 200 steps each. Writes $OUT/gpu_results.json (or ./gpu_results.json)
# and an nvidia-smi snapshot. Extra arguments go to benchmarks/gpu.py (e.g. --steps 100).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
mkdir -p "$out"
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv \
  > "$out/nvidia-smi.csv" 2>&1 || true
PYTHONPATH=. timeout 290 "$PY" benchmarks/gpu.py --out "$out/gpu_results.json" "$@" \
  2>&1 | tee "$out/gpu_bench.log"
