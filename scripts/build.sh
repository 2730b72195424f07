#!/usr/bin/env bash
# Configures (once) and builds linquant in ./build with Ninja. Extra arguments go to ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${LINQUANT_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
ninja -C "$build_dir" -j "$(nproc)" "$@"
