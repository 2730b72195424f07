"""Shared fixtures of the CLI tests: the binary, small IDX data sets written on the fly, and a
TorchScript copy of the tutorial net made with Debian's python3-torch."""
import gzip
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def linquant_bin():
    path = os.environ.get("LINQUANT_BIN")
    if not path:
        pytest.fail("LINQUANT_BIN is not set: run these tests through ctest")
    return path


def run(*args, timeout=600, cwd=None, env=None):
    """Runs `linquant ARGS...`; returns the CompletedProcess (text mode)."""
    return subprocess.run([linquant_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def write_idx(path, array, magic=None, truncate_to=None, gzipped=False):
    """An IDX file of unsigned bytes; `magic` overrides the header, `truncate_to` cuts the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", magic if magic is not None else 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    if truncate_to is not None:
        data = data[:truncate_to]
    opener = gzip.open if gzipped else open
    with opener(path, "wb") as f:
        f.write(data)


def make_idx_dataset(folder, n_train=512, n_test=256, gzipped=False, seed=0):
    """A learnable 10-class 28x28 data set: each class is a bright square at its own place."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gzipped else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            r, c = 2 + (label // 5) * 12, 2 + (label % 5) * 5
            images[i, r:r + 10, c:c + 4] = 230
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, gzipped=gzipped)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, gzipped=gzipped)
    return folder


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("idx") / "data")


@pytest.fixture(scope="session")
def tutorial_torchscript(tmp_path_factory):
    """The tutorial net traced by Debian's python3-torch (the reference PyTorch 1.13)."""
    path = tmp_path_factory.mktemp("torchscript") / "tutorial.pt"
    code = (
        "import sys, torch\n"
        "torch.manual_seed(0)\n"
        "m = torch.nn.Sequential(torch.nn.Conv2d(1, 12, 3, padding=1), torch.nn.ReLU(),\n"
        "    torch.nn.MaxPool2d(2, 2), torch.nn.Flatten(), torch.nn.Linear(2352, 10), torch.nn.LogSoftmax(1))\n"
        "torch.jit.trace(m.eval(), torch.randn(1, 1, 28, 28)).save(sys.argv[1])\n"
    )
    subprocess.run(["/usr/bin/python3", "-c", code, str(path)], check=True, timeout=300)
    return path


def load_package(path):
    """coremltools reads the package spec (no Core ML runtime on Linux); raises if it cannot."""
    code = ("import sys, coremltools as ct\n"
            "m = ct.models.MLModel(sys.argv[1], skip_model_load=True)\n"
            "print(m.get_spec().specificationVersion)\n")
    venv_python = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
    done = subprocess.run([str(venv_python), "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def leftovers(folder):
    """Temporary outputs (hidden .NAME.tmp-XXXXXX siblings) left in `folder`."""
    return [p.name for p in Path(folder).iterdir() if ".tmp-" in p.name]


def check_refused(done, folder, *fragments):
    """A refused run: exit code 2, one error line holding every fragment, no crash report and
    no temporary folder left in `folder`."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr
    assert "internal error" not in done.stderr and "terminate called" not in done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert leftovers(folder) == []
