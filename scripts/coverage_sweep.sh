#!/usr/bin/env bash
# The capture coverage sweep: how far does each of 24 models (every torchvision 0.14
# classification family, a TransformerEncoder, an LSTM and a Conv1d net) get through capture,
# prepare, 20 QAT steps, finalize, Core ML export, and does the package compute what LibTorch
# computes? Failures are the point: each is recorded with its stage and message, never fatal.
#
#   bash scripts/coverage_sweep.sh [OUT_DIR] [MODELS]
#
# OUT_DIR (default out/coverage) gets a folder per model and summary.json; MODELS is a
# comma-separated subset (names: /usr/bin/python3 tests/coverage/coverage_models.py --list).
# Needs a build with the coverage_driver target (ninja -C build coverage_driver); it does not
# build anything itself. Environment:
#   LINQUANT_BUILD_DIR   build folder (default build)
#   COVERAGE_TIMEOUT     seconds per model for the driver (default 900)
#   COVERAGE_CHECK_TIMEOUT  seconds per model for the Core ML check (default 600)
#   COVERAGE_STEPS       QAT steps (default 20)
#   COVERAGE_THREADS     threads of the driver (default 1)
#   COVERAGE_FORCE=1     trace the models again even when their files exist
#   COVERAGE_REQUIRE_PASS=1  exit 1 unless every model passed (the ctest fast subset)
# Steps: tests/coverage/coverage_models.py traces (Debian's python3), coverage_driver runs each
# model, tests/coverage/check_coverage.py checks the packages and tests/coverage/check_onnx.py
# the ONNX models (.venv), and
# tests/coverage/coverage_table.py prints the Markdown table and writes summary.json.
set -uo pipefail
cd "$(dirname "$0")/.."

out_dir=${1:-out/coverage}
models=${2:-}
build_dir=${LINQUANT_BUILD_DIR:-build}
driver=$build_dir/tests/coverage/coverage_driver
timeout_s=${COVERAGE_TIMEOUT:-900}
check_timeout_s=${COVERAGE_CHECK_TIMEOUT:-600}
steps=${COVERAGE_STEPS:-20}
threads=${COVERAGE_THREADS:-1}
venv_python=.venv/bin/python
export OMP_NUM_THREADS=$threads

mkdir -p "$out_dir"
if [[ -z $models ]]; then
  models=$(/usr/bin/python3 tests/coverage/coverage_models.py --list | awk '{print $1}' | paste -sd, -)
fi
IFS=, read -r -a names <<<"$models"

echo "== tracing ${#names[@]} models into $out_dir" >&2
force=()
[[ ${COVERAGE_FORCE:-0} == 1 ]] && force=(--force)
/usr/bin/python3 tests/coverage/coverage_models.py --out "$out_dir" --models "$models" \
  "${force[@]}" --threads "$threads" >&2 || echo "(some models did not trace)" >&2

if [[ ! -x $driver ]]; then
  echo "coverage_driver not found at $driver: build it (ninja -C $build_dir coverage_driver)" >&2
fi

checked=()
for name in "${names[@]}"; do
  dir=$out_dir/$name
  rm -rf "$dir/check.json" "$dir/driver_run.json" "$dir/model.mlpackage" \
    "$dir/model_fp32.mlpackage" "$dir/finalized_activations.pt"
  [[ -f $dir/model.pt ]] || continue
  if [[ ! -x $driver ]]; then
    echo '{"missing": true}' >"$dir/driver_run.json"
    continue
  fi
  echo "== $name" >&2
  start=$(date +%s%N)
  timeout --kill-after=30 "$timeout_s" "$driver" "$dir" --steps "$steps" --threads "$threads" \
    >"$dir/driver.log" 2>&1
  code=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  printf '{"exit_code": %d, "seconds": %d.%03d, "timeout": %d}\n' "$code" \
    $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$timeout_s" >"$dir/driver_run.json"
  tail -n 1 "$dir/driver.log" >&2
  checked+=("$dir")
done

# One checker process per model, so that a hang or a crash costs one model only.
for dir in "${checked[@]}"; do
  [[ -f $dir/finalized_output.pt ]] || continue
  timeout --kill-after=10 "$check_timeout_s" "$venv_python" tests/coverage/check_coverage.py \
    "$dir" 2>"$dir/check.log" >&2
  code=$?
  timeout --kill-after=10 "$check_timeout_s" "$venv_python" tests/coverage/check_onnx.py \
    "$dir" 2>"$dir/onnx_check.log" >&2
  if [[ ! -f $dir/onnx_check.json ]]; then
    printf '{"status": "error", "failed_step": "checker", "error": "check_onnx.py died, see onnx_check.log"}\n' \
      >"$dir/onnx_check.json"
  fi
  if [[ ! -f $dir/check.json ]]; then
    printf '{"status": "error", "failed_step": "checker", "error": "check_coverage.py %s (exit code %d), see check.log"}\n' \
      "$( ((code == 124)) && echo "timed out after ${check_timeout_s} s" || echo "died")" "$code" \
      >"$dir/check.json"
  fi
done

require=()
[[ ${COVERAGE_REQUIRE_PASS:-0} == 1 ]] && require=(--require-pass)
/usr/bin/python3 tests/coverage/coverage_table.py "$out_dir" "$models" "${require[@]}"
