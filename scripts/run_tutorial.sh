#!/usr/bin/env bash
# Sets up the machine, builds linquant and runs the Fashion-MNIST QAT tutorial end to end
# (`linquant train`): float training, LinearQuantizer QAT, finalize, evaluation, and the Core
# ML packages, in out/tutorial (git ignores out/). Extra arguments go to `linquant train`
# (e.g. --quick, --seed 1, --model tutorial_bn).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh linquant_cli
build_dir=${LINQUANT_BUILD_DIR:-build}
mkdir -p out
"$build_dir/src/apps/linquant" train --output out/tutorial --overwrite "$@"
echo "run_tutorial: done; the W8A8 Core ML package is out/tutorial/model.mlpackage"
