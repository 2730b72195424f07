"""`quantize` (QAT and calibration of a TorchScript model), `export` of its result and of the
float TorchScript model, `inspect` of each kind of file, and reproducibility of `train`."""
import json

from conftest import leftovers, load_package, make_idx_dataset, run


def test_inspect_torchscript(tutorial_torchscript):
    done = run("inspect", tutorial_torchscript)
    assert done.returncode == 0, done.stderr
    assert "TorchScript model" in done.stdout
    assert "conv x1" in done.stdout and "linear x1" in done.stdout
    assert "23650 parameters" in done.stdout


def test_export_float_torchscript(tutorial_torchscript, tmp_path):
    done = run("export", tutorial_torchscript, "-o", tmp_path / "float")
    assert done.returncode == 2 and "--input-shape" in done.stderr
    done = run("export", tutorial_torchscript, "--input-shape", "1,1,28,28", "-o", tmp_path / "float")
    assert done.returncode == 0, done.stderr
    assert load_package(tmp_path / "float.mlpackage") == 8


def test_quantize_qat_then_export(tutorial_torchscript, small_data, tmp_path):
    out = tmp_path / "w8a8.pt"
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", "12",
               "--batch-size", "32", "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and leftovers(tmp_path) == []
    assert "finalized" in done.stdout
    inspected = run("inspect", out)
    assert inspected.returncode == 0, inspected.stderr
    assert "TorchScript" in inspected.stdout and "milestones: [0, 0, 9, 9]" in inspected.stdout
    exported = run("export", out, "-o", tmp_path / "w8a8.mlpackage")
    assert exported.returncode == 0, exported.stderr
    assert load_package(tmp_path / "w8a8.mlpackage") == 8


def test_quantize_calibration(tutorial_torchscript, small_data, tmp_path):
    out = tmp_path / "calibrated.pt"
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", "4", "--calibrate", "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    inspected = run("inspect", out)
    assert "milestones: [0, 4, 4, 0]" in inspected.stdout


def test_quantize_bad_model_file(small_data, tmp_path):
    not_a_model = tmp_path / "model.pt"
    not_a_model.write_text("hello")
    done = run("quantize", "--model", not_a_model, "--data", small_data, "--steps", "2", "-o", tmp_path / "out.pt")
    assert done.returncode == 2
    assert "not a TorchScript model" in done.stderr
    assert not (tmp_path / "out.pt").exists() and leftovers(tmp_path) == []


def test_inspect_missing_file(tmp_path):
    done = run("inspect", tmp_path / "nothing.pt")
    assert done.returncode == 2 and "file not found" in done.stderr


def test_train_is_reproducible(tmp_path):
    data = make_idx_dataset(tmp_path / "data", n_train=1024, n_test=256, seed=1)
    results = []
    for name in ["a", "b"]:
        done = run("train", "--data", data, "--epochs", "1", "--qat-epochs", "1", "--seed", "7", "--threads", "2",
                   "-o", tmp_path / name)
        assert done.returncode == 0, done.stderr[-2000:]
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        results.append((metrics["test_accuracy"], metrics["test_loss"], metrics["curves"]["qat_train"]))
    assert results[0] == results[1]
