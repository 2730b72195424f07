#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer (Debian's clang-14), AddressSanitizer
# and UndefinedBehaviorSanitizer:
#
#   bash scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]
#
# Harnesses (tests/fuzz/*_fuzzer.cpp): config (LinearQuantizerConfig from JSON/YAML text),
# idx (the IDX data set reader, plain and gzipped). Default: 60 s each, all harnesses. Each
# starts from a seed corpus made here (the example configs, small IDX files) and keeps what it
# finds in out/fuzz/NAME/corpus; a crash leaves out/fuzz/NAME/crash-* and makes this script
# exit 1 (turn each into a regression test). The summary line per harness gives executions
# and time. Installs clang-14 and libclang-rt-14-dev with apt when missing. Not part of ctest:
# its value grows with time, which CI does not have.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
harnesses=("$@")
[[ ${#harnesses[@]} -eq 0 ]] && harnesses=(config idx)

if ! command -v clang++-14 >/dev/null ||
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "== installing clang-14 and libFuzzer (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-14 libclang-rt-14-dev >&2
fi
bash scripts/setup.sh >/dev/null  # yaml-cpp, zlib, LibTorch headers

out=out/fuzz
build=$out/build
mkdir -p "$build"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -isystem /usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1)

build_harness() {
  local name=$1
  local binary=$build/${name}_fuzzer
  case $name in
    config)
      clang++-14 "${flags[@]}" tests/fuzz/config_fuzzer.cpp src/config/*.cpp src/common/*.cpp \
        -lyaml-cpp -o "$binary" ;;
    idx)
      clang++-14 "${flags[@]}" tests/fuzz/idx_fuzzer.cpp src/data/idx_dataset.cpp \
        src/common/*.cpp -ltorch_cpu -lc10 -lz -o "$binary" ;;
    *) echo "unknown harness $name (config, idx)" >&2; exit 2 ;;
  esac
}

seed_corpus() {
  local name=$1 dir=$2
  mkdir -p "$dir"
  case $name in
    config)
      # The first byte picks the reader: even YAML, odd JSON.
      for f in examples/tutorial_qat.yaml examples/resnet18/qat_config.yaml; do
        { printf '0'; cat "$f"; } >"$dir/seed_$(basename "$f")"
        { printf '1'; /usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$f"; } \
          >"$dir/seed_$(basename "$f" .yaml).json"
      done ;;
    idx)
      /usr/bin/python3 - "$dir" <<'PY'
import gzip, struct, sys
d = sys.argv[1]
images = struct.pack(">IIII", 0x0803, 2, 3, 3) + bytes(range(18))
labels = struct.pack(">II", 0x0801, 4) + bytes([1, 2, 3, 4])
for name, data in (("images", images), ("labels", labels)):
    open(f"{d}/seed_{name}", "wb").write(data)
    open(f"{d}/seed_{name}.gz", "wb").write(gzip.compress(data))
PY
      ;;
  esac
}

failed=0
summary=()
for name in "${harnesses[@]}"; do
  echo "== $name: building" >&2
  build_harness "$name"
  dir=$out/$name
  seed_corpus "$name" "$dir/corpus"
  echo "== $name: fuzzing for $seconds s" >&2
  log=$dir/fuzz.log
  set +e
  (cd "$dir" && ASAN_OPTIONS=detect_leaks=0 "../build/${name}_fuzzer" -max_total_time="$seconds" \
     -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 corpus) >"$log" 2>&1
  code=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(ls "$dir" | grep -c '^\(crash\|leak\|timeout\|oom\)-' || true)
  summary+=("$name: $runs executions in $seconds s, exit $code, findings $crashes")
  [[ $code -ne 0 || $crashes -ne 0 ]] && failed=1
done
printf '%s\n' "${summary[@]}"
exit $failed
