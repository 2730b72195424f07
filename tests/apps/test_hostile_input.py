"""Hostile and broken input to the `linquant` command: configs that would take the machine's
memory, special files, corrupt models and packages, outputs --overwrite must not replace, and
signals. Each must end with one line on stderr and exit code 2 (or, for a signal, the signal),
and leave no temporary folder behind."""
import gzip
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from conftest import check_refused, leftovers, linquant_bin, run


def quantize(model, data, out, *extra, steps=2):
    return run("quantize", "--model", model, "--data", data, "--steps", steps, "--batch-size", "16",
               "-o", out, *extra)


# --- configs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, fragment", [
    ("huge_number.json", '{"global_config": {"milestones": [0, 1e400, 2, 3]}}', "1e400"),
    ("deep.json", "[" * 50000 + "]" * 50000, "nested more than 64 levels"),
    ("deep.yaml", "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
     "nested more than 64 levels"),
    # Nine levels of aliases, each repeating the previous level nine times: 9^9 values.
    ("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)), "expands to more than"),
])
def test_config_limits(tmp_path, small_data, tutorial_torchscript, name, text, fragment):
    config = tmp_path / name
    config.write_text(text)
    start = time.time()
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--config", config)
    check_refused(done, tmp_path, fragment)
    assert time.time() - start < 60
    assert not (tmp_path / "q.pt").exists()


def test_device_as_config(tmp_path, small_data, tutorial_torchscript):
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--config", "/dev/zero")
    check_refused(done, tmp_path, "/dev/zero", "not a regular file")


def test_misspelt_module_type_warns(tmp_path, small_data, tutorial_torchscript):
    config = tmp_path / "typo.yaml"
    config.write_text("module_type_configs:\n  Conv2D: null\n")
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--config", config)
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if "Conv2D" in line]
    assert len(warnings) == 1 and "has no effect" in warnings[0], done.stderr


def test_many_stale_module_names_warn_briefly(tmp_path, small_data, tutorial_torchscript):
    config = tmp_path / "many.yaml"
    config.write_text("module_name_configs:\n" +
                      "".join(f"  block{i}.conv: null\n" for i in range(30000)))
    start = time.time()
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--config", config)
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.time() - start < 120
    named = [line for line in done.stderr.splitlines() if "matches no submodule" in line]
    assert len(named) == 10, len(named)
    assert "and 29990 more module_name_configs entries" in done.stderr


# --- models and data -----------------------------------------------------------------------

def test_device_as_model(tmp_path, small_data):
    done = quantize("/dev/zero", small_data, tmp_path / "q.pt")
    check_refused(done, tmp_path, "/dev/zero", "not a regular file")


def test_torchscript_whose_code_does_not_compile(tmp_path, small_data, tutorial_torchscript):
    bad = tmp_path / "bad_code.pt"
    with zipfile.ZipFile(tutorial_torchscript) as zin, \
            zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            payload = zin.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                payload += b"\ndef broken(:\n"
            zout.writestr(info.filename, payload)
    check_refused(quantize(bad, small_data, tmp_path / "q.pt"), tmp_path,
                  "bad_code.pt", "not a TorchScript model")
    check_refused(run("inspect", bad), tmp_path, "not a TorchScript model")


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_header_claiming_two_billion_images(tmp_path, small_data, gzipped, tutorial_torchscript):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    header = struct.pack(">IIII", 0x0803, 2 ** 31, 28, 28) + bytes(1000)
    name = "train-images-idx3-ubyte"
    (data / name).unlink()
    if gzipped:
        with gzip.open(data / (name + ".gz"), "wb") as f:
            f.write(header)
    else:
        (data / name).write_bytes(header)
    done = quantize(tutorial_torchscript, data, tmp_path / "q.pt")
    check_refused(done, tmp_path, name, "1683627180032 bytes")


# --- outputs -------------------------------------------------------------------------------

def test_empty_output_path(tmp_path, small_data, tutorial_torchscript):
    check_refused(quantize(tutorial_torchscript, small_data, ""), tmp_path, "output path is empty")
    check_refused(run("export", tutorial_torchscript, "--input-shape", "1,1,28,28", "-o", ""),
                  tmp_path, "output path is empty")
    check_refused(run("train", "--quick", "--data", small_data, "-o", ""), tmp_path,
                  "output path is empty")


def test_overwrite_replaces_only_linquant_outputs(tmp_path, small_data, tutorial_torchscript):
    folder = tmp_path / "someones_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (folder, fifo):
        done = quantize(tutorial_torchscript, small_data, target, "--overwrite")
        check_refused(done, tmp_path, "refusing to replace", "not a regular file")
    done = run("train", "--quick", "--data", small_data, "-o", folder, "--overwrite")
    check_refused(done, tmp_path, "refusing to replace", "linquant train")
    (tmp_path / "someones_folder.mlpackage").mkdir()
    (tmp_path / "someones_folder.mlpackage" / "notes.txt").write_text("keep me too")
    done = run("export", tutorial_torchscript, "--input-shape", "1,1,28,28", "-o",
               tmp_path / "someones_folder.mlpackage", "--overwrite")
    check_refused(done, tmp_path, "refusing to replace", "not a Core ML package")
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "someones_folder.mlpackage" / "notes.txt").read_text() == "keep me too"
    assert fifo.is_fifo()
    # What linquant wrote, it replaces.
    out = tmp_path / "q.pt"
    for _ in range(2):
        done = quantize(tutorial_torchscript, small_data, out, "--overwrite")
        assert done.returncode == 0, done.stderr[-2000:]
    assert leftovers(tmp_path) == []


def test_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path, small_data,
                                                          tutorial_torchscript):
    dead = tmp_path / ".q.pt.tmp-999999999-AbC123"  # above any pid Linux hands out
    alive = tmp_path / f".q.pt.tmp-{os.getpid()}-XyZ789"
    other = tmp_path / ".other.pt.tmp-999999999-AbC123"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "model.pt").write_bytes(b"partial")
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not dead.exists()
    assert alive.exists() and other.exists()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_leaves_nothing(tmp_path, small_data, tutorial_torchscript, signal_number):
    process = subprocess.Popen(
        [linquant_bin(), "quantize", "--model", str(tutorial_torchscript), "--data",
         str(small_data), "--steps", "100000", "--batch-size", "16", "-o", str(tmp_path / "q.pt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not leftovers(tmp_path) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "the run never created its temporary folder"
    time.sleep(0.5)  # into training
    process.send_signal(signal_number)
    assert process.wait(timeout=60) == -signal_number
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "q.pt").exists()


def test_broken_stderr_pipe_leaves_nothing(tmp_path, small_data, tutorial_torchscript):
    # stderr is a pipe whose reader is gone: the next progress line raises SIGPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    process = subprocess.Popen(
        [linquant_bin(), "quantize", "--model", str(tutorial_torchscript), "--data",
         str(small_data), "--steps", "50", "--batch-size", "16", "-o", str(tmp_path / "q.pt")],
        stdout=subprocess.DEVNULL, stderr=write_end, env={**os.environ, "LINQUANT_PROGRESS": "lines"})
    os.close(write_end)
    assert process.wait(timeout=300) == -signal.SIGPIPE
    assert leftovers(tmp_path) == []


# --- a full disk -----------------------------------------------------------------------------

def with_file_size_limit(limit):
    """A child whose writes past `limit` bytes fail with EFBIG, as on a full disk (RLIMIT_FSIZE;
    SIGXFSZ ignored, so the failing write returns an error instead of killing the process)."""
    def limit_writes():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return limit_writes


def run_on_full_disk(limit, *args):
    return subprocess.run([linquant_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=600, preexec_fn=with_file_size_limit(limit))


def test_full_disk_while_saving_a_quantized_model(tmp_path, small_data, tutorial_torchscript):
    done = run_on_full_disk(20_000, "quantize", "--model", tutorial_torchscript, "--data",
                            small_data, "--steps", "2", "--batch-size", "16", "-o",
                            tmp_path / "q.pt")
    check_refused(done, tmp_path, "cannot write", "q.pt", "File too large")
    assert not (tmp_path / "q.pt").exists()


def test_full_disk_while_exporting(tmp_path, small_data, tutorial_torchscript):
    assert quantize(tutorial_torchscript, small_data, tmp_path / "q.pt").returncode == 0
    done = run_on_full_disk(20_000, "export", tmp_path / "q.pt", "-o", tmp_path / "m.mlpackage")
    check_refused(done, tmp_path, "cannot write", "m.mlpackage", "File too large")
    assert not (tmp_path / "m.mlpackage").exists()


def test_full_disk_while_training(tmp_path, small_data):
    # The run trains, then fails on the first file it saves (a package's weights).
    done = run_on_full_disk(20_000, "train", "--data", small_data, "--epochs", "1",
                            "--qat-epochs", "1", "--batch-size", "64", "-o", tmp_path / "run")
    check_refused(done, tmp_path, "cannot write", "File too large")
    assert not (tmp_path / "run").exists()


# --- training ------------------------------------------------------------------------------

@pytest.mark.parametrize("lr", ["inf", "1e30"])
def test_diverging_training_stops(tmp_path, small_data, tutorial_torchscript, lr):
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--lr", lr, steps=20)
    check_refused(done, tmp_path, "training diverged at step")
    assert not (tmp_path / "q.pt").exists()


# --- packages ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_package(tmp_path_factory, tutorial_torchscript):
    out = tmp_path_factory.mktemp("package") / "float.mlpackage"
    done = run("export", tutorial_torchscript, "--input-shape", "1,1,28,28", "-o", out)
    assert done.returncode == 0, done.stderr
    return out


def damaged_copy(package, tmp_path, damage):
    copy = tmp_path / "damaged.mlpackage"
    shutil.copytree(package, copy)
    model_dir = copy / "Data" / "com.apple.CoreML"
    damage(model_dir / "model.mlmodel", model_dir / "weights" / "weight.bin")
    return copy


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def overwrite_at(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize("damage, fragment", [
    (lambda model, weights: weights.unlink(), "No such file"),
    (lambda model, weights: truncate(weights, 32), "shorter than the blob file header"),
    (lambda model, weights: truncate(weights, weights.stat().st_size - 8), "past the end"),
    (lambda model, weights: overwrite_at(weights, 64, b"\0\0\0\0"), "bad sentinel"),
    (lambda model, weights: overwrite_at(weights, 64 + 4, b"\x07"), "data type"),
    (lambda model, weights: overwrite_at(weights, 4, b"\x03"), "version 3"),
    (lambda model, weights: truncate(model, 0), "not a Core ML model file"),
])
def test_inspect_finds_damaged_packages(good_package, tmp_path, damage, fragment):
    healthy = run("inspect", good_package)
    assert healthy.returncode == 0, healthy.stderr
    assert "blob records checked" in healthy.stdout
    done = run("inspect", damaged_copy(good_package, tmp_path, damage))
    check_refused(done, tmp_path, fragment)


# --- checkpoints and resume ----------------------------------------------------------------

def quantize_command(model, data, out, *extra):
    return [linquant_bin(), "quantize", "--model", str(model), "--data", str(data), "--steps",
            "150", "--batch-size", "16", "--threads", "2", "-o", str(out), *map(str, extra)]


def interrupt_after_first_checkpoint(command, checkpoint, signal_number):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert checkpoint.exists(), "no checkpoint was written"
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_resumed_run_is_bit_identical(tmp_path, small_data, tutorial_torchscript, signal_number):
    whole = tmp_path / "whole.pt"
    done = subprocess.run(quantize_command(tutorial_torchscript, small_data, whole),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    out = tmp_path / "resumed.pt"
    checkpoint = tmp_path / "resumed.pt.checkpoint" / "checkpoint.pt"
    command = quantize_command(tutorial_torchscript, small_data, out, "--checkpoint-every", 20)
    code, stderr = interrupt_after_first_checkpoint(command, checkpoint, signal_number)
    assert code == -signal_number, stderr[-2000:]
    assert "--resume" in stderr and "interrupted after step" in stderr, stderr[-2000:]
    assert not out.exists() and leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.pt.checkpoint", "whole.pt"]

    # Without --resume the checkpoint is not silently dropped; with other options it is refused.
    check_refused(subprocess.run(command, capture_output=True, text=True, timeout=600),
                  tmp_path, "--resume")
    other = quantize_command(tutorial_torchscript, small_data, out, "--resume", "--lr", "0.001")
    check_refused(subprocess.run(other, capture_output=True, text=True, timeout=600), tmp_path,
                  "other options", "lr")

    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming at step" in done.stderr
    assert not (tmp_path / "resumed.pt.checkpoint").exists()
    assert out.read_bytes() == whole.read_bytes()


def test_resume_without_checkpoint(tmp_path, small_data, tutorial_torchscript):
    done = quantize(tutorial_torchscript, small_data, tmp_path / "q.pt", "--resume")
    check_refused(done, tmp_path, "no checkpoint")


@pytest.mark.parametrize("every, phase", [(5, "float"), (200, "QAT")])
def test_resumed_train_is_bit_identical(tmp_path, small_data, every, phase):
    def command(out, *extra):
        return [linquant_bin(), "train", "--data", str(small_data), "--epochs", "3",
                "--qat-epochs", "3", "--batch-size", "8", "-o", str(out), *map(str, extra)]

    whole = tmp_path / "whole"
    done = subprocess.run(command(whole), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    out = tmp_path / "resumed"
    resumed = command(out, "--checkpoint-every", every)
    code, stderr = interrupt_after_first_checkpoint(
        resumed, tmp_path / "resumed.checkpoint" / "checkpoint.pt", signal.SIGINT)
    assert code == -signal.SIGINT, stderr[-2000:]
    step = int(stderr.split("interrupted after step ")[1].split()[0])
    assert (step < 3 * 64) == (phase == "float"), step  # 64 steps per epoch
    assert not out.exists() and leftovers(tmp_path) == []
    done = subprocess.run(resumed + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "resumed.checkpoint").exists()

    weights = Path("model.mlpackage") / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    assert (out / weights).read_bytes() == (whole / weights).read_bytes()
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, out))
    for key in ("test_accuracy", "test_loss", "curves", "milestones_steps"):
        assert a[key] == b[key], key
    # The saved model embeds metrics.json, wall times included, so its size can differ by the
    # archive's 64-byte alignment; every other size must match.
    for sizes in (a["sizes_bytes"], b["sizes_bytes"]):
        sizes.pop("saved_quantized_model")
    assert a["sizes_bytes"] == b["sizes_bytes"]
