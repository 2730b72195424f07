// Library-internal: TensorValue and TensorType to MILSpec protobuf values and types, following
// Core ML's serialization rules (which TensorValue member each dtype uses, blob references).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "MIL.pb.h"
#include "linquant/export/coreml/blob_writer.h"
#include "linquant/export/coreml/mil_value.h"

namespace linquant::coreml::detail {

namespace milspec = ::CoreML::Specification::MILSpec;

// The file name a BlobFileValue names; resolved by Core ML relative to the package's model.
extern const char kWeightFileReference[];  // "@model_path/weights/weight.bin"

milspec::DataType to_proto_dtype(DType dtype);
void set_tensor_type(const TensorType& type, milspec::ValueType* out);

// An immediate value: fp32 -> floats; int16/uint16/int32 -> ints; int64 -> longInts;
// bool -> bools; string -> strings; fp16, int8, uint8, int4, uint4 -> raw bytes (sub-byte packed).
milspec::Value immediate_value(const TensorValue& value);
// A reference to a blob already written at `metadata_offset` of weight.bin.
milspec::Value blob_file_value(const TensorType& type, std::uint64_t metadata_offset);
// Writes to `weights` when goes_to_weight_file(value), else an immediate value.
milspec::Value make_value(const TensorValue& value, BlobWriter& weights);

milspec::Value string_scalar_value(const std::string& text);
// A dictionary<string, string> value (the program's "buildInfo" attribute).
milspec::Value string_dictionary_value(const std::map<std::string, std::string>& entries);

}  // namespace linquant::coreml::detail
