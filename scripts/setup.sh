#!/usr/bin/env bash
# Installs everything linquant needs on a fresh Debian 12 machine; safe to run again.
# Debian packages (LibTorch, OpenBLAS, protobuf, JSON/YAML/CLI libraries, test and bench
# frameworks, the Fashion-MNIST data set, gnuplot for the training charts) and a Python venv
# with coremltools, onnx and onnxruntime for validation.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread libgloo-dev
  python3-torch python3-torchvision python3-venv python3-pip python3-numpy python3-yaml
  protobuf-compiler libprotobuf-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev zlib1g-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  dataset-fashion-mnist
  gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python environment for reference scripts and package validation (coremltools from PyPI).
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# Reinstall whenever requirements.txt changes (a stamp holds the hash it was installed from).
wanted=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing Python packages into $venv: $(tr '\n' ' ' < scripts/requirements.txt)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements.txt
  echo "$wanted" > "$venv/.requirements.sha256"
fi
echo "setup: done"
