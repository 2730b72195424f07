"""linquant's .proto files are written from field tables; this checks them against the
descriptors compiled into coremltools' own protobuf classes: every field linquant declares must
exist in Core ML's schema with the same number, name, wire type, repetition and message/enum
type, and every enum value must match."""
import shutil
import subprocess

import pytest
from google.protobuf import descriptor_pb2

from coremltools.proto import MIL_pb2, Model_pb2  # noqa: F401  (registers the descriptors)


def _compiled_descriptors(proto_dir, tmp_path):
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    out = tmp_path / "linquant_coreml.desc"
    subprocess.run(
        [protoc, "-I", proto_dir, "--include_imports", f"--descriptor_set_out={out}",
         "Model.proto", "MIL.proto", "FeatureTypes.proto"],
        check=True,
    )
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(out.read_bytes())
    return files


def _check_enum(pool, full_name, enum):
    reference = pool.FindEnumTypeByName(full_name)
    for value in enum.value:
        where = f"{full_name}.{value.name}"
        assert value.name in reference.values_by_name, f"{where} unknown to Core ML"
        assert reference.values_by_name[value.name].number == value.number, where


def _check_message(pool, full_name, message, checked):
    reference = pool.FindMessageTypeByName(full_name)
    for field in message.field:
        where = f"{full_name}.{field.name} = {field.number}"
        ref = reference.fields_by_number.get(field.number)
        assert ref is not None, f"{where}: no such field number in Core ML's schema"
        assert ref.name == field.name, f"{where}: Core ML calls it {ref.name}"
        assert ref.type == field.type, f"{where}: wire type {field.type} != {ref.type}"
        assert ref.is_repeated == (field.label == field.LABEL_REPEATED), f"{where}: repetition"
        if field.type in (field.TYPE_MESSAGE, field.TYPE_ENUM):
            ref_type = ref.message_type or ref.enum_type
            assert field.type_name.lstrip(".") == ref_type.full_name, f"{where}: type"
        checked.append(where)
    for nested in message.nested_type:
        _check_message(pool, f"{full_name}.{nested.name}", nested, checked)
    for enum in message.enum_type:
        _check_enum(pool, f"{full_name}.{enum.name}", enum)


def test_schema_is_wire_compatible_with_coreml(proto_dir, tmp_path):
    pool = Model_pb2.DESCRIPTOR.pool
    checked = []
    for file in _compiled_descriptors(proto_dir, tmp_path).file:
        for message in file.message_type:
            _check_message(pool, f"{file.package}.{message.name}", message, checked)
        for enum in file.enum_type:
            _check_enum(pool, f"{file.package}.{enum.name}", enum)
    # Sanity: the comparison really covered the schema (Model, MIL program, feature types).
    assert len(checked) > 100
    assert any(c.startswith("CoreML.Specification.Model.mlProgram = 502") for c in checked)


@pytest.mark.parametrize(
    "enum_name, expected",
    [
        ("CoreML.Specification.MILSpec.DataType",
         {"FLOAT16": 10, "FLOAT32": 11, "INT8": 21, "INT32": 23, "INT4": 25, "UINT8": 31,
          "UINT4": 35}),
        ("CoreML.Specification.ArrayFeatureType.ArrayDataType",
         {"FLOAT16": 65552, "FLOAT32": 65568, "INT32": 131104}),
    ],
)
def test_enum_values_used_by_the_writer(proto_dir, tmp_path, enum_name, expected):
    files = _compiled_descriptors(proto_dir, tmp_path)
    pool_values = {}
    for file in files.file:
        for enum in file.enum_type:
            pool_values[f"{file.package}.{enum.name}"] = {v.name: v.number for v in enum.value}
        for message in file.message_type:
            for enum in message.enum_type:
                pool_values[f"{file.package}.{message.name}.{enum.name}"] = {
                    v.name: v.number for v in enum.value
                }
    for name, number in expected.items():
        assert pool_values[enum_name][name] == number
