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


def _newest(pattern):
    found = [p for p in glob.glob(os.path.join(REPO, pattern)) if os.path.exists(p)]
    return max(found, key=os.path.getmtime) if found else None


@pytest.fixture(scope="session")
def exported_dir(tmp_path_factory):
    """The directory export_models wrote (tests/export/coreml_save/export_models.cpp)."""
    directory = os.environ.get("LINQUANT_EXPORTED_MODELS")
    if not directory:
        program = _newest("build*/tests/export/export_models")
        if program is None:
            pytest.fail("export_models not found: build it (ninja -C BUILD export_models) or "
                        "set LINQUANT_EXPORTED_MODELS to a directory it wrote")
        scripts = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(program))),
                               "tests", "frontend", "torchscript_models")
        subprocess.run(["/usr/bin/python3",
                        os.path.join(REPO, "tests", "frontend", "models",
                                     "make_torchscript_models.py"), scripts], check=True)
        directory = str(tmp_path_factory.mktemp("exported_models"))
        subprocess.run([program, directory, scripts], check=True, stdout=subprocess.DEVNULL)
    return directory
