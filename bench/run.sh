#!/usr/bin/env bash
# Runs all linquant benchmarks on this machine and prints the results table (bench/report.py):
# fake-quant kernels against ReLU, training steps (LibTorch float, linquant QAT, PyTorch 1.13
# float and FX QAT on the same networks, batch sizes and 2 threads), peak memory, the
# prepare/finalize/Core ML export times, and `linquant quantize` end to end (time to the first
# step, steps/s, peak memory). Raw results and summary.json go to bench/results/.
#
#   bash bench/run.sh            full run (ImageNet models at 3x224x224, batch 32): ~25 min
#   bash bench/run.sh --quick    smoke run (3x64x64, few steps, one repetition): ~3 min
#
# Benchmark an idle machine: the load average is recorded with the results.
set -euo pipefail
cd "$(dirname "$0")/.."

size=224
steps=15
big_steps=5
repetitions=3
big_repetitions=2
kernel_min_time=0.5
if [ "${1:-}" = "--quick" ]; then
  size=64; steps=3; big_steps=2; repetitions=1; kernel_min_time=0.05
elif [ -n "${1:-}" ]; then
  echo "usage: bash bench/run.sh [--quick]" >&2
  exit 2
fi

bash scripts/setup.sh
bash scripts/build.sh linquant_bench_fake_quant linquant_bench_train_step linquant_bench_pipeline
build_dir=${LINQUANT_BUILD_DIR:-build}
bin="$build_dir/bench"
out=${LINQUANT_BENCH_RESULTS:-bench/results}
models="$build_dir/bench/models"
mkdir -p "$out"
rm -f "$out"/train_steps.jsonl "$out"/pipeline.jsonl

# Same allocator behaviour and thread count for both sides (libtorch-debian.md gotchas 2, 5).
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
export OMP_NUM_THREADS=2

/usr/bin/python3 bench/models.py "$models" --size "$size"
python3 - "$out/machine.json" "$size" <<'PY'
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({"loadavg_before": os.getloadavg(), "cpus": os.cpu_count(),
               "image_size": int(sys.argv[2])}, f)
PY

echo "== fake-quant kernels (Google Benchmark)" >&2
"$bin/linquant_bench_fake_quant" --benchmark_min_time="$kernel_min_time" \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/kernels.json" --benchmark_out_format=json >&2

# One process per measurement, so each peak memory figure is that mode's alone; the modes
# take turns within a repetition so slow drifts of the machine hit all of them alike.
train() {  # model, batch,C,H,W, steps, repetitions
  local model=$1 input=$2 n=$3 reps=$4
  for rep in $(seq "$reps"); do
    echo "== $model training step, repetition $rep/$reps" >&2
    for mode in float qat qat_frozen; do
      "$bin/linquant_bench_train_step" "$models/$model.pt" "$mode" --input "$input" \
        --steps "$n" --warmup 3 >> "$out/train_steps.jsonl"
    done
    for mode in float fx_coremltools fx_onednn; do
      /usr/bin/python3 bench/fx_qat_step.py "$model" "$mode" --size "$size" --steps "$n" \
        --warmup 3 >> "$out/train_steps.jsonl"
    done
  done
}
train tutorial_cnn 128,1,28,28 "$steps" "$repetitions"
train resnet18 "32,3,$size,$size" "$big_steps" "$big_repetitions"
train mobilenet_v2 "32,3,$size,$size" "$big_steps" "$big_repetitions"

for model in resnet18 resnet50 mobilenet_v2; do
  echo "== $model prepare, finalize, export" >&2
  "$bin/linquant_bench_pipeline" "$models/$model.pt" --input "3,$size,$size" >> "$out/pipeline.jsonl"
done

# The command line end to end: data streaming and resizing per batch, time to the first step.
rm -f "$out"/quantize.jsonl
bash scripts/build.sh linquant_cli >&2
for shape in 3,64,64 3,224,224; do
  echo "== linquant quantize resnet18 at $shape, 20 steps of batch 8" >&2
  /usr/bin/python3 bench/quantize_run.py "$build_dir/src/apps/linquant" "$models/resnet18.pt" \
    "$shape" 20 8 >> "$out/quantize.jsonl"
done

/usr/bin/python3 bench/report.py "$out"
