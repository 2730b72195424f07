"""Model files that claim more data than they hold (crafted or corrupted): tensors longer than
their storage, pickles with strings longer than the pickle. `quantize`, `export` and `inspect`
must refuse them with one line and exit code 2 before any tensor is used or any claimed size is
allocated, and leave nothing behind. LibTorch's loaders accept short storages (without the
check, quantize corrupted the heap and export read past the buffer) and allocate a claimed
string's length before reading it (4 GB and 8 s for a 100-byte file)."""
import pickle
import struct
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


def rewrite_pickle(source, target, record, payload):
    """A copy of a model zip whose pickle `record` (e.g. "data.pkl") is replaced by `payload`."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            replace = info.filename.split("/", 1)[1] == record
            zout.writestr(info.filename, payload if replace else zin.read(info.filename))


# Protocol 2, then a BINUNICODE string claiming 4 GB (found by scripts/fuzz.sh).
HUGE_STRING = b"\x80\x02X" + struct.pack("<I", 0xFFFFFFFF) + b"abc"


def test_torchscript_claiming_a_huge_string(tutorial_torchscript, small_data, tmp_path):
    bad = tmp_path / "huge.pt"
    rewrite_pickle(tutorial_torchscript, bad, "data.pkl", HUGE_STRING)
    done = run("quantize", "--model", bad, "--data", small_data, "--steps", "2",
               "-o", tmp_path / "out.pt")
    check_refused(done, tmp_path, "huge.pt", "data.pkl is damaged")
    check_refused(run("inspect", bad), tmp_path, "huge.pt", "data.pkl is damaged")


# Protocol 2, None, then LONG_BINPUT into memo slot 2^31 - 2^23 + 128 of an empty memo: LibTorch
# reserves twice that many slots, 68 GB (found by scripts/fuzz.sh).
HUGE_MEMO = b"\x80\x02Nr" + struct.pack("<I", 0x7F800080) + b"."


def test_torchscript_claiming_a_huge_memo(tutorial_torchscript, tmp_path):
    bad = tmp_path / "memo.pt"
    rewrite_pickle(tutorial_torchscript, bad, "data.pkl", HUGE_MEMO)
    check_refused(run("inspect", bad), tmp_path, "memo.pt",
                  "data.pkl is damaged (byte 3 stores into a memo slot out of order)")


def test_saved_model_claiming_a_huge_string(tutorial_torchscript, small_data, tmp_path):
    good = tmp_path / "w8a8.pt"
    done = run("quantize", "--model", tutorial_torchscript, "--data", small_data, "--steps", "2",
               "-o", good)
    assert done.returncode == 0, done.stderr[-2000:]
    bad = tmp_path / "huge.pt"
    rewrite_pickle(good, bad, "constants.pkl", HUGE_STRING)
    check_refused(run("inspect", bad), tmp_path, "huge.pt", "constants.pkl is damaged")
    done = run("export", bad, "-o", tmp_path / "huge.mlpackage")
    check_refused(done, tmp_path, "huge.pt", "constants.pkl is damaged")
    assert not (tmp_path / "huge.mlpackage").exists()


def insert_class_statement(source, target, statement):
    """A copy of a TorchScript zip with `statement` added to the body of the class of its
    top-level module (a Sequential)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            payload = zin.read(info.filename)
            if info.filename.endswith("code/__torch__/torch/nn/modules/container.py"):
                header, rest = payload.split(b"\n", 1)
                assert header.startswith(b"class "), header
                payload = header + b"\n  " + statement + b"\n" + rest
            zout.writestr(info.filename, payload)


def test_torchscript_with_unannotated_class_constant(tutorial_torchscript, small_data, tmp_path):
    # LibTorch 1.13 reads the missing annotation of `name = value` in a class body (undefined
    # behaviour: a segfault in the saved-model fuzzer). A Final constant still loads.
    fine = tmp_path / "fine.pt"
    insert_class_statement(tutorial_torchscript, fine, b"extra : Final[int] = 3")
    done = run("export", fine, "--input-shape", "1,1,28,28", "-o", tmp_path / "fine")
    assert done.returncode == 0, done.stderr[-2000:]
    bad = tmp_path / "bad.pt"
    insert_class_statement(tutorial_torchscript, bad, b"formatmeters__ = []")
    fragment = 'line 2: class attribute "formatmeters__" assigned without a type annotation'
    check_refused(run("inspect", bad), tmp_path, "bad.pt", fragment)
    done = run("quantize", "--model", bad, "--data", small_data, "--steps", "2", "-o",
               tmp_path / "q.pt")
    check_refused(done, tmp_path, "bad.pt", fragment)


def test_torchscript_with_debug_info_past_its_string_table(tutorial_torchscript, tmp_path):
    # LibTorch reads the source-range table when a source location is asked for and trusts
    # its indices: one past the string table was a null dereference (saved-model fuzzer).
    bad = tmp_path / "debug.pt"
    with zipfile.ZipFile(tutorial_torchscript) as zin, \
            zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        damaged = 0
        for info in zin.infolist():
            payload = zin.read(info.filename)
            if info.filename.endswith(".debug_pkl"):
                tag, strings, entries = pickle.loads(payload)
                offset, ((text, _, line), start, end), handle = entries[-1]
                entry = (offset, ((text, len(strings), line), start, end), handle)
                payload = pickle.dumps((tag, strings, entries[:-1] + (entry,)), protocol=2)
                damaged += 1
            zout.writestr(info.filename, payload)
        assert damaged > 0
    check_refused(run("inspect", bad), tmp_path, "debug.pt", ".debug_pkl is damaged",
                  "points outside its text")
