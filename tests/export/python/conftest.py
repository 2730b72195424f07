"""Fixtures for the Core ML export tests: runs write_sample_packages once per session and hands
the tests the packages it wrote and the values it was given (samples.json)."""
import glob
import json
import logging
import os
import subprocess
import sys
import warnings

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

# coremltools prints "Failed to load _MLModelProxy" (no Core ML framework on Linux) and a torch
# version notice on import; neither matters for loading specs and weights.
logging.getLogger("coremltools").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")


def _find_writer():
    explicit = os.environ.get("LINQUANT_WRITE_SAMPLE_PACKAGES")
    if explicit:
        return explicit
    # Run by hand (".venv/bin/python -m pytest -q tests/export/python"): use the newest build.
    candidates = glob.glob(os.path.join(REPO, "build*", "tests", "export", "write_sample_packages"))
    candidates = [c for c in candidates if os.access(c, os.X_OK)]
    if not candidates:
        pytest.fail(
            "write_sample_packages not found: build it "
            "(ninja -C build-export write_sample_packages) "
            "or set LINQUANT_WRITE_SAMPLE_PACKAGES to its path"
        )
    return max(candidates, key=os.path.getmtime)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml_samples")
    result = subprocess.run([_find_writer(), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def samples(sample_dir):
    with open(sample_dir / "samples.json") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def proto_dir():
    return os.environ.get(
        "LINQUANT_PROTO_DIR", os.path.join(REPO, "src", "export", "coreml", "proto")
    )
