"""Writes a file bundle (the format of tests/fuzz/file_bundle.h) from a zip archive's records
or from a folder's files: python3 make_bundle.py (zip FILE | folder DIR) OUT."""
import struct
import sys
import zipfile
from pathlib import Path


def bundle(files):
    out = bytearray()
    for name, data in files:
        encoded = name.encode()
        out += bytes([len(encoded)]) + encoded + struct.pack("<I", len(data)) + data
    return bytes(out)


def zip_records(path):
    # Record names without the archive's own top folder, which the harness's writer adds;
    # the version record is written by the writer too.
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.split("/", 1)[1]
            if name not in ("version", ".data/version"):
                yield name, archive.read(info)


def folder_files(path):
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(file.relative_to(root)), file.read_bytes()


if __name__ == "__main__":
    kind, source, out = sys.argv[1:4]
    files = zip_records(source) if kind == "zip" else folder_files(source)
    Path(out).write_bytes(bundle(files))
