#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer (Debian's clang-14), AddressSanitizer
# and UndefinedBehaviorSanitizer:
#
#   bash scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]
#
# Harnesses (tests/fuzz/*_fuzzer.cpp): config (LinearQuantizerConfig from JSON/YAML text),
# idx (the IDX data set reader, plain and gzipped), saved_model (the reader of quantized
# models saved by train/quantize, as `inspect` and `export` load them) and package (the
# .mlpackage reader behind `inspect`). Default: 60 s each, all harnesses. They are built in
# the instrumented build (out/sanitize, shared with `scripts/test.sh --sanitize`), start from
# a seed corpus made here (example configs, small IDX files, a saved model and its package
# written by the instrumented `linquant`) and keep what they find in out/fuzz/NAME/corpus.
# A crash, hang or memory blow-up leaves out/fuzz/NAME/{crash,timeout,oom}-* and makes this
# script exit 1 (turn each into a regression test). The summary line per harness gives
# executions and time. Not part of ctest: its value grows with time, which CI does not have.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
harnesses=("$@")
[[ ${#harnesses[@]} -eq 0 ]] && harnesses=(config idx saved_model package)

build=$(bash scripts/build_instrumented.sh "${harnesses[@]/%/_fuzzer}" linquant_cli)
linquant=$build/src/apps/linquant
out=$PWD/out/fuzz
python=/usr/bin/python3

# Seeds shared by saved_model and package: a tiny TorchScript net quantized in 2 steps.
make_model_seeds() {
  local dir=$out/seeds
  [[ -f $dir/quantized.pt && -d $dir/model.mlpackage ]] && return
  rm -rf "$dir" && mkdir -p "$dir/data"
  "$python" - "$dir" <<'PY'
import struct, sys, torch
d = sys.argv[1]
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, stride=4), torch.nn.ReLU(), torch.nn.Flatten(),
                          torch.nn.Linear(98, 10))
torch.jit.trace(net.eval(), torch.randn(1, 1, 28, 28)).save(f"{d}/net.pt")
g = torch.Generator().manual_seed(0)
for split, n in (("train", 64), ("t10k", 32)):
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
    open(f"{d}/data/{split}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
    open(f"{d}/data/{split}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + labels.numpy().tobytes())
PY
  ASAN_OPTIONS=detect_leaks=0 "$linquant" quantize --model "$dir/net.pt" --data "$dir/data" \
    --steps 2 --batch-size 8 --eval-size 8 -o "$dir/quantized.pt" >"$dir/log" 2>&1
  ASAN_OPTIONS=detect_leaks=0 "$linquant" export "$dir/quantized.pt" -o "$dir/model.mlpackage" \
    >>"$dir/log" 2>&1
}

seed_corpus() {
  local name=$1 dir=$2
  mkdir -p "$dir"
  case $name in
    config)
      # The first byte picks the reader: even YAML, odd JSON.
      for f in examples/tutorial_qat.yaml examples/resnet18/qat_config.yaml; do
        { printf '0'; cat "$f"; } >"$dir/seed_$(basename "$f")"
        { printf '1'; "$python" -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$f"; } \
          >"$dir/seed_$(basename "$f" .yaml).json"
      done ;;
    idx)
      "$python" - "$dir" <<'PY'
import gzip, struct, sys
d = sys.argv[1]
images = struct.pack(">IIII", 0x0803, 2, 3, 3) + bytes(range(18))
labels = struct.pack(">II", 0x0801, 4) + bytes([1, 2, 3, 4])
for name, data in (("images", images), ("labels", labels)):
    open(f"{d}/seed_{name}", "wb").write(data)
    open(f"{d}/seed_{name}.gz", "wb").write(gzip.compress(data))
PY
      ;;
    saved_model)
      make_model_seeds
      "$python" tests/fuzz/make_bundle.py zip "$out/seeds/quantized.pt" "$dir/seed_quantized" ;;
    package)
      make_model_seeds
      "$python" tests/fuzz/make_bundle.py folder "$out/seeds/model.mlpackage" "$dir/seed_package" ;;
    *) echo "unknown harness $name (config, idx, saved_model, package)" >&2; exit 2 ;;
  esac
}

failed=0
summary=()
for name in "${harnesses[@]}"; do
  dir=$out/$name
  seed_corpus "$name" "$dir/corpus"
  echo "== $name: fuzzing for $seconds s" >&2
  log=$dir/fuzz.log
  # A single allocation above 2 GB is a finding, except in LibTorch's archive reader: its
  # unpickler reserves the lengths a pickle claims (4 GB and more from a few bytes) before
  # reading them. Such a reservation is virtual memory; it ends in an error (c10::Error, or
  # bad_alloc, which linquant reports as a corrupt file) when the bytes are not there. Real
  # memory use stays capped by -rss_limit_mb for every harness.
  malloc_limit=2048
  [[ $name == saved_model ]] && malloc_limit=32768
  set +e
  # One thread per process for LibTorch; leaks are not findings (LibTorch keeps caches); a
  # failed huge allocation throws bad_alloc, as it does outside the sanitizer.
  (cd "$dir" && OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
     "$build/tests/fuzz/${name}_fuzzer" -max_total_time="$seconds" -timeout=10 \
     -rss_limit_mb=4096 -malloc_limit_mb="$malloc_limit" -max_len=1048576 \
     -print_final_stats=1 corpus) >"$log" 2>&1
  code=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  took=$(grep -o '^#[0-9]*.*' "$log" | tail -1 | grep -o 'exec/s: [0-9]*' || true)
  findings=$(ls "$dir" | grep -c '^\(crash\|leak\|timeout\|oom\|slow-unit\)-' || true)
  summary+=("$name: $runs executions in at most $seconds s ($took), exit $code, findings $findings")
  [[ $code -ne 0 || $findings -ne 0 ]] && failed=1
done
printf '%s\n' "${summary[@]}"
exit $failed
