// Core ML's value serialization rules (coremltools backend/mil/helper.py behaviour) for the
// value kinds linquant writes.
#include "value_proto.h"

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml::detail {

const char kWeightFileReference[] = "@model_path/weights/weight.bin";

milspec::DataType to_proto_dtype(DType dtype) {
  switch (dtype) {
    case DType::Bool: return milspec::BOOL;
    case DType::String: return milspec::STRING;
    case DType::Float16: return milspec::FLOAT16;
    case DType::Float32: return milspec::FLOAT32;
    case DType::Int4: return milspec::INT4;
    case DType::UInt4: return milspec::UINT4;
    case DType::Int8: return milspec::INT8;
    case DType::UInt8: return milspec::UINT8;
    case DType::Int16: return milspec::INT16;
    case DType::UInt16: return milspec::UINT16;
    case DType::Int32: return milspec::INT32;
    case DType::Int64: return milspec::INT64;
  }
  throw ExportError("to_proto_dtype: unknown dtype");
}

void set_tensor_type(const TensorType& type, milspec::ValueType* out) {
  milspec::TensorType* tensor = out->mutable_tensortype();
  tensor->set_datatype(to_proto_dtype(type.dtype));
  tensor->set_rank(static_cast<std::int64_t>(type.shape.size()));
  for (std::int64_t d : type.shape) {
    if (d < 0) throw ExportError("tensor type " + type.to_string() + " has a negative dimension");
    tensor->add_dimensions()->mutable_constant()->set_size(static_cast<std::uint64_t>(d));
  }
}

milspec::Value immediate_value(const TensorValue& value) {
  milspec::Value out;
  set_tensor_type(value.type(), out.mutable_type());
  milspec::TensorValue* tensor = out.mutable_immediatevalue()->mutable_tensor();
  switch (value.dtype()) {
    case DType::Float32: {
      auto* floats = tensor->mutable_floats();
      for (float v : value.float_values()) floats->add_values(v);
      break;
    }
    case DType::Int16:
    case DType::UInt16:
    case DType::Int32: {
      auto* ints = tensor->mutable_ints();
      for (std::int64_t v : value.integer_values()) ints->add_values(static_cast<std::int32_t>(v));
      break;
    }
    case DType::Int64: {
      auto* longs = tensor->mutable_longints();
      for (std::int64_t v : value.integer_values()) longs->add_values(v);
      break;
    }
    case DType::Bool: {
      auto* bools = tensor->mutable_bools();
      for (std::int64_t v : value.integer_values()) bools->add_values(v != 0);
      break;
    }
    case DType::String: {
      auto* strings = tensor->mutable_strings();
      for (const std::string& s : value.string_values()) strings->add_values(s);
      break;
    }
    case DType::Float16:
    case DType::Int8:
    case DType::UInt8:
    case DType::Int4:
    case DType::UInt4: {
      const std::vector<std::uint8_t> bytes = value.packed_bytes();
      tensor->mutable_bytes()->set_values(std::string(bytes.begin(), bytes.end()));
      break;
    }
  }
  return out;
}

milspec::Value blob_file_value(const TensorType& type, std::uint64_t metadata_offset) {
  milspec::Value out;
  set_tensor_type(type, out.mutable_type());
  milspec::Value::BlobFileValue* blob = out.mutable_blobfilevalue();
  blob->set_filename(kWeightFileReference);
  blob->set_offset(metadata_offset);
  return out;
}

milspec::Value make_value(const TensorValue& value, BlobWriter& weights) {
  if (goes_to_weight_file(value)) return blob_file_value(value.type(), weights.write(value));
  return immediate_value(value);
}

milspec::Value string_scalar_value(const std::string& text) {
  return immediate_value(TensorValue::scalar_string(text));
}

milspec::Value string_dictionary_value(const std::map<std::string, std::string>& entries) {
  milspec::Value out;
  milspec::DictionaryType* dict = out.mutable_type()->mutable_dictionarytype();
  set_tensor_type(TensorType{DType::String, {}}, dict->mutable_keytype());
  set_tensor_type(TensorType{DType::String, {}}, dict->mutable_valuetype());
  milspec::DictionaryValue* values = out.mutable_immediatevalue()->mutable_dictionary();
  for (const auto& [key, text] : entries) {
    milspec::DictionaryValue::KeyValuePair* pair = values->add_values();
    *pair->mutable_key() = string_scalar_value(key);
    *pair->mutable_value() = string_scalar_value(text);
  }
  return out;
}

}  // namespace linquant::coreml::detail
