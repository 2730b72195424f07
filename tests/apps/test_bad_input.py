"""Bad input: one line on stderr, exit code 2, no output folder and no temporary leftovers."""
import os
import shutil

import numpy as np
import pytest

from conftest import check_refused, make_idx_dataset, run, write_idx


def check_rejected(done, parent, out_name, *fragments):
    check_refused(done, parent, *fragments)
    assert "float 1/1" not in done.stderr  # rejected before any training
    assert not (parent / out_name).exists()


def train_small(data, out, *extra):
    return run("train", "--data", data, "--epochs", "1", "--qat-epochs", "1", "-o", out, *extra)


def test_missing_data_dir(tmp_path):
    done = train_small(tmp_path / "nowhere", tmp_path / "out")
    check_rejected(done, tmp_path, "out", "data set folder not found", "nowhere")


def test_folder_without_idx_files(tmp_path):
    (tmp_path / "empty").mkdir()
    done = train_small(tmp_path / "empty", tmp_path / "out")
    check_rejected(done, tmp_path, "out", "no IDX data set", "train-images-idx3-ubyte")


def test_incomplete_data_set(tmp_path):
    data = make_idx_dataset(tmp_path / "data")
    os.remove(data / "t10k-labels-idx1-ubyte")
    done = train_small(data, tmp_path / "out")
    check_rejected(done, tmp_path, "out", "missing t10k-labels-idx1-ubyte")


def test_wrong_magic(tmp_path):
    data = make_idx_dataset(tmp_path / "data")
    write_idx(data / "t10k-labels-idx1-ubyte", np.zeros(256, np.uint8), magic=0x0901)
    done = train_small(data, tmp_path / "out")
    check_rejected(done, tmp_path, "out", "t10k-labels-idx1-ubyte", "magic 2305", "2049")


def test_truncated_file(tmp_path):
    data = make_idx_dataset(tmp_path / "data")
    write_idx(data / "train-images-idx3-ubyte", np.zeros((512, 28, 28), np.uint8), truncate_to=1000)
    done = train_small(data, tmp_path / "out")
    check_rejected(done, tmp_path, "out", "train-images-idx3-ubyte", "truncated")


def test_truncated_gzip_file(tmp_path):
    data = make_idx_dataset(tmp_path / "data", gzipped=True)
    write_idx(data / "t10k-images-idx3-ubyte.gz", np.zeros((256, 28, 28), np.uint8), truncate_to=5000, gzipped=True)
    done = train_small(data, tmp_path / "out")
    check_rejected(done, tmp_path, "out", "t10k-images-idx3-ubyte.gz", "truncated")


def test_config_error_names_key_path(tmp_path, small_data):
    config = tmp_path / "bad.yaml"
    config.write_text("global_config:\n  weight_dtype: int3\n")
    done = train_small(small_data, tmp_path / "out", "--config", config)
    check_rejected(done, tmp_path, "out", "global_config.weight_dtype", "int3")


def test_config_error_in_module_name_config(tmp_path, small_data):
    config = tmp_path / "bad.json"
    config.write_text('{"module_name_configs": {"0": {"milestones": [0, 1]}}}')
    done = train_small(small_data, tmp_path / "out", "--config", config)
    check_rejected(done, tmp_path, "out", "module_name_configs", "milestones")


def test_missing_config_file(tmp_path, small_data):
    done = train_small(small_data, tmp_path / "out", "--config", tmp_path / "nope.yaml")
    check_rejected(done, tmp_path, "out", "config file not found")


def test_output_under_a_file(tmp_path, small_data):
    (tmp_path / "file").write_text("x")
    done = train_small(small_data, tmp_path / "file" / "out")
    check_rejected(done, tmp_path, "out", "is not a folder")


def test_output_in_missing_folder(tmp_path, small_data):
    done = train_small(small_data, tmp_path / "missing" / "out")
    check_rejected(done, tmp_path, "missing", "does not exist")


def test_unwritable_output(tmp_path, small_data):
    # /proc refuses new entries even to root, where file modes would not.
    done = train_small(small_data, "/proc/linquant-test-output")
    assert done.returncode == 2
    assert "cannot write /proc/linquant-test-output" in done.stderr
    assert not os.path.exists("/proc/linquant-test-output")


def test_bad_option_values(tmp_path, small_data):
    for args, fragment in [(["--epochs", "0"], "--epochs"), (["--model", "resnet"], "--model"),
                           (["--milestones", "1,2"], "--milestones"), (["--target", "iOS99"], "iOS99")]:
        done = train_small(small_data, tmp_path / "out", *args)
        check_rejected(done, tmp_path, "out", fragment)


def test_images_of_wrong_size(tmp_path):
    data = make_idx_dataset(tmp_path / "data")
    write_idx(data / "train-images-idx3-ubyte", np.zeros((512, 32, 32), np.uint8))
    done = train_small(data, tmp_path / "out")
    check_rejected(done, tmp_path, "out", "28x28")


def test_small_data_set_trains(tmp_path, small_data):
    """The synthetic set itself is fine (so the failures above are the edits' doing)."""
    done = train_small(small_data, tmp_path / "out")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "metrics.json").exists()
    shutil.rmtree(tmp_path / "out")
