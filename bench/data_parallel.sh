#!/usr/bin/env bash
# Data-parallel training throughput (bench/data_parallel.py): the tutorial and resnet18 QAT in
# 1 process with 1 or 2 threads and in 2 worker processes, and the all-reduce times. About
# 6 minutes on 2 cores; run it on an idle machine.
#
#   bash bench/data_parallel.sh [--repetitions N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh linquant_cli linquant_bench_allreduce
build_dir=${LINQUANT_BUILD_DIR:-build}
out=${LINQUANT_BENCH_RESULTS:-bench/results}
mkdir -p "$out"
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
/usr/bin/python3 bench/models.py "$build_dir/bench/models" --size 224
/usr/bin/python3 bench/data_parallel.py "$build_dir" "$out" "$@"
