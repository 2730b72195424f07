#!/usr/bin/env bash
# Sets up the machine, builds linquant and runs the end-to-end example on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh observe_fashion_mnist
build_dir=${LINQUANT_BUILD_DIR:-build}
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$build_dir/examples/observe_fashion_mnist" "$@"
