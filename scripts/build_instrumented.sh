#!/usr/bin/env bash
# Configures (once) and builds the instrumented variant of linquant in out/sanitize: clang-14,
# AddressSanitizer + UndefinedBehaviorSanitizer, libFuzzer coverage (see
# cmake/linquant_sanitizers.cmake). Arguments are ninja targets (default: all). Prints the
# build folder on stdout; everything else goes to stderr. Installs clang-14 and libFuzzer
# (libclang-rt-14-dev) with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++-14 >/dev/null ||
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "== installing clang-14 and libFuzzer (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-14 libclang-rt-14-dev >&2
fi
bash scripts/setup.sh >&2
build=$PWD/out/sanitize
if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++-14 -DLINQUANT_BUILD_FUZZERS=ON \
    -DLINQUANT_BUILD_BENCHMARKS=OFF >&2
fi
ninja -C "$build" -j "$(nproc)" "$@" >&2
echo "$build"
