#!/usr/bin/env bash
# Latency of linquant's int8 ONNX export in ONNX Runtime against ONNX Runtime float and
# LibTorch float (bench/onnx_latency.py): the tutorial net, resnet18 and mobilenet_v2 at batch
# 1 and 64, 2 threads each. Results go to bench/results/onnx_latency.json; the table is printed.
#
#   bash bench/onnx_latency.sh            3x224x224 ImageNet models: ~10 min
#   bash bench/onnx_latency.sh --quick    3x64x64, shorter timing: ~2 min
#
# Benchmark an idle machine: the load average is recorded with the results.
set -euo pipefail
cd "$(dirname "$0")/.."

size=224
seconds=3
if [ "${1:-}" = "--quick" ]; then
  size=64; seconds=0.5
elif [ -n "${1:-}" ]; then
  echo "usage: bash bench/onnx_latency.sh [--quick]" >&2
  exit 2
fi

bash scripts/setup.sh
bash scripts/build.sh linquant_bench_onnx_export
build_dir=${LINQUANT_BUILD_DIR:-build}
out=${LINQUANT_BENCH_RESULTS:-bench/results}
mkdir -p "$out"
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
export OMP_NUM_THREADS=2
.venv/bin/python bench/onnx_latency.py "$build_dir/bench/linquant_bench_onnx_export" "$out" \
  --size "$size" --seconds "$seconds" --threads 2
