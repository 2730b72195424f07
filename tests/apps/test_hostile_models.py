"""Model files whose tensors claim more data than their storage holds (crafted or corrupted):
`quantize`, `export` and `inspect` must refuse them with one line and exit code 2 before any
tensor is used, and leave nothing behind. LibTorch's loaders accept such files; without the
check, quantize corrupted the heap and export read past the buffer."""
import zipfile

from conftest import check_refused, run


def shrink_largest_record(source, target):
    """A copy of a TorchScript/torch.save zip whose largest tensor storage is cut in half."""
    with zipfile.ZipFile(source) as zin:
        infos = zin.infolist()
        victim = max((i for i in infos if "/data/" in i.filename), key=lambda i: i.file_size)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
            for info in infos:
                payload = zin.read(info.filename)
                if info.filename == victim.filename:
                    payload = payload[:len(payload) // 2]
                zout.writestr(info.filename, payload)
    return victim.filename


def test_torchscript_with_short_storage(tutorial_torchscript, small_data, tmp_path):
    bad = tmp_path / "short.pt"
    shrink_largest_record(tutorial_torchscript, bad)
    out = tmp_path / "out.pt"
    done = run("quantize", "--model", bad, "--data", small_data, "--steps", "2", "-o", out)
    check_refused(done, tmp_path, "short.pt", "does not fit its storage")
    assert not out.exists()
    done = run("export", bad, "--input-shape", "1,1,28,28", "-o", tmp_path / "float")
    check_refused(done, tmp_path, "does not fit its storage")
    assert not (tmp_path / "float.mlpackage").exists()
    check_refused(run("inspect", bad), tmp_path, "does not fit its storage")


def test_saved_model_with_short_storage(tutorial_torchscript, small_data, tmp_path):
    good = tmp_path / "w8a8.pt"
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", "4",
               "--batch-size", "32", "-o", good)
    assert done.returncode == 0, done.stderr[-2000:]
    bad = tmp_path / "short.pt"
    shrink_largest_record(good, bad)
    check_refused(run("inspect", bad), tmp_path, "short.pt")
    done = run("export", bad, "-o", tmp_path / "short.mlpackage")
    check_refused(done, tmp_path, "short.pt")
    assert not (tmp_path / "short.mlpackage").exists()
