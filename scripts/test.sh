#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the whole test suite with ctest.
#
#   bash scripts/test.sh [--sanitize] [CTEST ARGS...]
#
# --sanitize runs the same suite on the instrumented build (out/sanitize: clang-14,
# AddressSanitizer + UndefinedBehaviorSanitizer, scripts/build_instrumented.sh). LibTorch and
# the other Debian libraries are not instrumented; what is suppressed, and why, is in
# tests/sanitizer/*.supp.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --sanitize ]]; then
  shift
  build_dir=$(bash scripts/build_instrumented.sh)
  supp=$PWD/tests/sanitizer
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
  export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp
else
  bash scripts/setup.sh
  bash scripts/build.sh
  build_dir=${LINQUANT_BUILD_DIR:-build}
fi
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
