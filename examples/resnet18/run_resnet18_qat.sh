#!/usr/bin/env bash
# QAT of torchvision's resnet18 (TorchScript from Python, trained here from scratch since no
# pretrained weights are downloaded) on Fashion-MNIST resized to 3x32x32, then export and
# inspect the W8A8 Core ML package. 200 steps of batch 32 by default: a few minutes on an idle
# 2-core machine (resnet18 is heavy for a CPU); pass fewer STEPS for a smoke test.
#   bash examples/resnet18/run_resnet18_qat.sh [OUTPUT_DIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${LINQUANT_BUILD_DIR:-build}
out=${1:-resnet18_qat}
steps=${2:-200}
linquant="$build_dir/src/apps/linquant"
[ -x "$linquant" ] || bash scripts/build.sh linquant_cli
mkdir -p "$out"
/usr/bin/python3 examples/resnet18/make_resnet18.py "$out/resnet18.pt"
"$linquant" inspect "$out/resnet18.pt" | sed -n 1,4p
"$linquant" quantize --model "$out/resnet18.pt" --config examples/resnet18/qat_config.yaml \
  --input-shape 3,32,32 --steps "$steps" --batch-size 32 --lr 1e-3 --eval-size 2000 \
  -o "$out/resnet18_w8a8.pt" --overwrite
"$linquant" export "$out/resnet18_w8a8.pt" --target ios17 -o "$out/resnet18_w8a8.mlpackage" --overwrite
"$linquant" inspect "$out/resnet18_w8a8.mlpackage" | sed -n 1,30p
