"""Data-parallel `train` and `quantize`: --nproc N worker processes, --nnodes launchers and
torchrun's variables, against one process on the same data, and workers that die or hang."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import linquant_bin, run


def metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def pinned_kernels():
    """The environment with OpenBLAS and oneDNN on their AVX2 kernels. Their AVX-512 kernels
    round a row of a matrix product or a convolution's output differently depending on how many
    rows (images) the call has, so a worker's half batch would not reproduce the whole batch's
    rows. The AVX2 ones, which every machine of this kind can run, are the same code on every
    CPU and give the tutorial's rows the same bits at both sizes."""
    return dict(os.environ, OPENBLAS_CORETYPE="Haswell", DNNL_MAX_CPU_ISA="AVX2")


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """The --quick tutorial in one process, in 2 workers (--nproc 2), and in 2 launchers of one
    worker each (--nnodes 2, as on two machines)."""
    root = tmp_path_factory.mktemp("parallel")
    pinned = pinned_kernels()
    runs = {"one": run("train", "--quick", "-o", root / "one", env=pinned),
            "nproc": run("train", "--quick", "--nproc", "2", "-o", root / "nproc", env=pinned)}
    env = dict(pinned, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    common = [linquant_bin(), "train", "--quick", "--nnodes", "2", "--worker-timeout", "60"]
    second = subprocess.Popen(common + ["--node-rank", "1", "-o", str(root / "node1")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs["nnodes"] = subprocess.run(common + ["--node-rank", "0", "-o", str(root / "node0")],
                                    env=env, capture_output=True, text=True, timeout=600)
    out, err = second.communicate(timeout=600)
    runs["node1"] = subprocess.CompletedProcess(second.args, second.returncode, out, err)
    # torchrun itself (Debian's torch 1.13 on Python 3.11 needs explicit --redirects/--tee:
    # its default "0" no longer parses).
    runs["torchrun"] = subprocess.run(
        ["/usr/bin/python3", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", "--redirects", "1", "--tee", "1", "--no_python", linquant_bin(), "train", "--quick",
         "-o", str(root / "torchrun")], capture_output=True, text=True, timeout=600, env=pinned)
    return root, runs


def test_two_workers_match_one_process(quick_runs):
    root, runs = quick_runs
    for name in ("one", "nproc"):
        assert runs[name].returncode == 0, runs[name].stderr
    one, two = metrics(root / "one"), metrics(root / "nproc")
    assert one["options"]["workers"] == 1 and two["options"]["workers"] == 2
    # Same global batches: the float phase differs only in the order gradients are summed.
    for a, b in zip(one["curves"]["float_train"], two["curves"]["float_train"], strict=True):
        assert relative(a["loss"], b["loss"]) < 1e-5
    assert relative(one["test_loss"]["float"], two["test_loss"]["float"]) < 1e-5
    # Under fake quantization those last bits flip a few roundings: close, not equal.
    for a, b in zip(one["curves"]["qat_train"], two["curves"]["qat_train"], strict=True):
        assert relative(a["loss"], b["loss"]) < 2e-2
    for key in ("float", "fake_quant", "finalized"):
        assert abs(one["test_accuracy"][key] - two["test_accuracy"][key]) <= 0.2
    assert (root / "nproc" / "model.mlpackage").is_dir()
    assert (root / "nproc" / "model.onnx").is_file()
    assert "in each of 2 workers" in runs["nproc"].stdout


def test_batch_norm_is_synchronized_in_both_phases(tmp_path):
    """tutorial_bn: BatchNorm in the float phase (the captured float graph) and the QAT Conv-BN
    normalize with the whole batch's statistics (measured: float curve losses within 4e-5 of one
    process, test loss 5e-7); with each worker's own half they move by up to 3e-3 and 2e-4."""
    for name, extra in (("one", []), ("two", ["--nproc", "2"])):
        done = run("train", "--quick", "--model", "tutorial_bn", "-o", tmp_path / name, *extra,
                   env=pinned_kernels())
        assert done.returncode == 0, done.stderr
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    # float64 sums against ATen's float32 statistics: last bits, not more.
    for a, b in zip(one["curves"]["float_train"], two["curves"]["float_train"], strict=True):
        assert relative(a["loss"], b["loss"]) < 2e-4
    assert relative(one["test_loss"]["float"], two["test_loss"]["float"]) < 1e-5
    for key in ("float", "fake_quant", "finalized"):
        assert abs(one["test_accuracy"][key] - two["test_accuracy"][key]) <= 0.2


def test_only_rank_zero_prints_and_writes(quick_runs):
    root, runs = quick_runs
    # One progress stream and one table: the other worker's are silenced.
    assert runs["nproc"].stderr.count("float 1/1") == runs["one"].stderr.count("float 1/1")
    assert runs["nproc"].stdout.count("Results (") == 1
    assert sorted(p.name for p in root.iterdir()) == ["node0", "nproc", "one", "torchrun"]


def test_launchers_on_two_nodes_equal_two_local_workers(quick_runs):
    root, runs = quick_runs
    assert runs["nnodes"].returncode == 0, runs["nnodes"].stderr
    assert runs["node1"].returncode == 0, runs["node1"].stderr
    assert runs["node1"].stdout == ""  # the worker of rank 1 writes nothing, prints no table
    assert not (root / "node1").exists()
    # The same two ranks doing the same arithmetic: the same run, bit for bit.
    a, b = metrics(root / "nproc"), metrics(root / "node0")
    assert a["test_loss"] == b["test_loss"] and a["curves"] == b["curves"]


def test_torchrun_workers_equal_two_local_workers(quick_runs):
    root, runs = quick_runs
    assert runs["torchrun"].returncode == 0, runs["torchrun"].stderr[-3000:]
    a, b = metrics(root / "nproc"), metrics(root / "torchrun")
    assert a["test_loss"] == b["test_loss"] and a["curves"] == b["curves"]
    assert a["options"]["workers"] == b["options"]["workers"] == 2


def test_nproc_under_torchrun_is_a_usage_error(tmp_path):
    env = dict(os.environ, WORLD_SIZE="2", RANK="0")
    done = subprocess.run([linquant_bin(), "train", "--quick", "--nproc", "2", "-o",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "WORLD_SIZE is set" in done.stderr
    assert not (tmp_path / "out").exists()


def test_checkpoints_with_workers_are_refused(tmp_path):
    done = run("train", "--quick", "--nproc", "2", "--checkpoint-every", "10", "-o", tmp_path / "o")
    assert done.returncode == 2 and "one process only" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_batch_smaller_than_the_workers_is_refused(tmp_path):
    # 12033 images in batches of 128 leave a last batch of 1 image for 2 workers.
    done = run("train", "--quick", "--train-size", 12033, "--nproc", 2, "-o", tmp_path / "o")
    assert done.returncode == 2, done.stderr
    errors = [l for l in done.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and "a batch of 1 images cannot be shared by 2 workers" in errors[0]
    assert list(tmp_path.iterdir()) == []


def worker_pid(launcher, rank):
    """The pid of the launcher's worker with RANK=rank (its environment says which)."""
    children = open(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read().split()
    for pid in children:
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker of rank {rank} among {children}")


def fault_in_qat(tmp_path, fault, timeout_seconds):
    """Starts 2 workers, applies `fault` to rank 1 once rank 0 reports QAT progress; returns the
    exit code, the error lines, and seconds from the fault to the launcher's exit."""
    env = dict(os.environ, LINQUANT_PROGRESS="lines")
    launcher = subprocess.Popen(
        [linquant_bin(), "train", "--quick", "--qat-epochs", "3", "--nproc", "2",
         "--worker-timeout", str(timeout_seconds), "-o", str(tmp_path / "out")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in launcher.stderr:
        lines.append(line)
        if line.startswith("QAT 1/3"):
            break
    victim = worker_pid(launcher, 1)
    os.kill(victim, fault)
    faulted = time.monotonic()
    lines += launcher.stderr.readlines()
    code = launcher.wait(timeout=120)
    elapsed = time.monotonic() - faulted
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)  # no worker is left behind
    return code, [l for l in lines if "error" in l], elapsed


def test_killed_worker_stops_the_others(tmp_path):
    code, errors, elapsed = fault_in_qat(tmp_path, signal.SIGKILL, 60)
    assert code == 3
    assert len(errors) == 1, errors
    assert errors[0].startswith("linquant: error: worker rank 1 ") and "signal 9" in errors[0]
    assert elapsed < 10  # the lost connection is seen at once, not after the timeout
    assert list(tmp_path.iterdir()) == []  # no output, no staging folder


def test_hung_worker_stops_the_others_after_the_timeout(tmp_path):
    code, errors, elapsed = fault_in_qat(tmp_path, signal.SIGSTOP, 3)
    assert code == 3
    assert len(errors) == 1, errors
    assert errors[0].startswith("linquant: error: rank 0: lost contact with the other workers")
    assert "Timed out" in errors[0]
    assert 2.5 < elapsed < 3 + 12  # the timeout, then the stopped worker's grace period at most
    assert list(tmp_path.iterdir()) == []


def test_quantize_calibration_in_two_workers_is_exact(tutorial_torchscript, small_data, tmp_path):
    """Calibration only observes: with exact observer synchronization two workers that each see
    half of every batch end with the one process's ranges, so the exported models are equal."""
    for name, extra in (("one", []), ("two", ["--nproc", "2"])):
        done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", 6,
                   "--batch-size", 48, "--calibrate", "--threads", 1, "-o",
                   tmp_path / f"{name}.pt", *extra, env=pinned_kernels())
        assert done.returncode == 0, done.stderr
        done = run("export", tmp_path / f"{name}.pt", "--format", "onnx", "-o",
                   tmp_path / f"{name}.onnx")
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "one.onnx").read_bytes() == (tmp_path / "two.onnx").read_bytes()


def test_quantize_qat_in_two_workers(tutorial_torchscript, small_data, tmp_path):
    accuracy = {}
    for name, extra in (("one", []), ("two", ["--nproc", "2"])):
        done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", 12,
                   "--threads", 1, "-o", tmp_path / f"{name}.pt", *extra)
        assert done.returncode == 0, done.stderr
        line = next(l for l in done.stdout.splitlines() if "test accuracy" in l)
        accuracy[name] = float(line.split("finalized")[1].split("%")[0])
    assert abs(accuracy["one"] - accuracy["two"]) <= 1.0  # 256 test images: within 2 images
