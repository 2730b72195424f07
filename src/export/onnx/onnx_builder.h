// Library-internal: an ONNX graph under construction. Values are named strings; the builder
// keeps every name unique (model inputs and outputs keep theirs), stores initializers as raw
// little-endian bytes, and serializes the whole model at the end.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace linquant::onnx {

// ONNX element types (TensorProto.DataType values).
enum class ElementType : int32_t {
  Float = 1,
  UInt8 = 2,
  Int8 = 3,
  Int32 = 6,
  Int64 = 7,
  Bool = 9,
  UInt4 = 21,
  Int4 = 22,
};
const char* to_string(ElementType type);

struct Attribute {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>> value;
};

class OnnxBuilder {
 public:
  OnnxBuilder();
  ~OnnxBuilder();
  OnnxBuilder(const OnnxBuilder&) = delete;
  OnnxBuilder& operator=(const OnnxBuilder&) = delete;

  // Names that must stay as they are (model inputs and outputs); claim them first.
  void reserve(const std::string& name);
  // `base`, or `base` with a numeric suffix, never handed out before and not reserved.
  std::string unique(const std::string& base);

  void add_input(const std::string& name, ElementType type, const std::vector<int64_t>& shape);
  void add_output(const std::string& name, ElementType type, const std::vector<int64_t>& shape);

  // Initializers; each returns the (unique) name it was given.
  std::string add_initializer(const std::string& base, ElementType type,
                              const std::vector<int64_t>& dims, std::string raw_bytes);
  std::string add_floats(const std::string& base, const std::vector<int64_t>& dims,
                         const std::vector<float>& values);
  std::string add_float_scalar(const std::string& base, float value);
  std::string add_int64s(const std::string& base, const std::vector<int64_t>& dims,
                         const std::vector<int64_t>& values);
  std::string add_int32s(const std::string& base, const std::vector<int64_t>& dims,
                         const std::vector<int32_t>& values);
  // int8/uint8 (one byte each) or int4/uint4 (two per byte, low nibble first).
  std::string add_small_ints(const std::string& base, ElementType type,
                             const std::vector<int64_t>& dims, const std::vector<int32_t>& values);

  // A node of the default operator set (or `domain`); returns its output names, made unique
  // from `outputs` (which may name reserved model outputs, kept as they are).
  std::vector<std::string> add_node(const std::string& op_type,
                                    const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs,
                                    const std::vector<Attribute>& attributes = {},
                                    const std::string& domain = "");
  // The single-output form.
  std::string add(const std::string& op_type, const std::vector<std::string>& inputs,
                  const std::string& output, const std::vector<Attribute>& attributes = {});

  // The serialized ModelProto.
  std::string serialize(int64_t opset,
                        const std::vector<std::pair<std::string, std::string>>& metadata) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::set<std::string> taken_;
  std::set<std::string> reserved_;
};

// The ONNX IR version a model of this default-domain opset declares (the earliest one that
// defines it, so older runtimes read the file).
int64_t ir_version_for_opset(int64_t opset);

}  // namespace linquant::onnx
