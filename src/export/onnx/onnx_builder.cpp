#include "onnx_builder.h"

#include <cstring>

#include "linquant/export/export_error.h"
#include "onnx_model.pb.h"

namespace linquant::onnx {

struct OnnxBuilder::Impl {
  onnx_proto::GraphProto graph;
};

const char* to_string(ElementType type) {
  switch (type) {
    case ElementType::Float:
      return "float";
    case ElementType::UInt8:
      return "uint8";
    case ElementType::Int8:
      return "int8";
    case ElementType::Int32:
      return "int32";
    case ElementType::Int64:
      return "int64";
    case ElementType::Bool:
      return "bool";
    case ElementType::UInt4:
      return "uint4";
    case ElementType::Int4:
      return "int4";
  }
  return "?";
}

namespace {

template <typename T>
std::string raw_bytes_of(const std::vector<T>& values) {
  // x86-64 and every platform LibTorch builds for are little-endian, as ONNX raw_data is.
  std::string bytes(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

void set_value_info(onnx_proto::ValueInfoProto* info, const std::string& name, ElementType type,
                    const std::vector<int64_t>& shape) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(static_cast<int32_t>(type));
  auto* dims = tensor->mutable_shape();
  for (int64_t d : shape) dims->add_dim()->set_dim_value(d);
}

void set_attribute(onnx_proto::AttributeProto* proto, const Attribute& attribute) {
  using Type = onnx_proto::AttributeProto;
  proto->set_name(attribute.name);
  if (const auto* i = std::get_if<int64_t>(&attribute.value)) {
    proto->set_type(Type::INT);
    proto->set_i(*i);
  } else if (const auto* f = std::get_if<float>(&attribute.value)) {
    proto->set_type(Type::FLOAT);
    proto->set_f(*f);
  } else if (const auto* s = std::get_if<std::string>(&attribute.value)) {
    proto->set_type(Type::STRING);
    proto->set_s(*s);
  } else if (const auto* ints = std::get_if<std::vector<int64_t>>(&attribute.value)) {
    proto->set_type(Type::INTS);
    for (int64_t v : *ints) proto->add_ints(v);
  } else {
    proto->set_type(Type::FLOATS);
    for (float v : std::get<std::vector<float>>(attribute.value)) proto->add_floats(v);
  }
}

}  // namespace

OnnxBuilder::OnnxBuilder() : impl_(std::make_unique<Impl>()) { impl_->graph.set_name("linquant"); }
OnnxBuilder::~OnnxBuilder() = default;

void OnnxBuilder::reserve(const std::string& name) { reserved_.insert(name); }

std::string OnnxBuilder::unique(const std::string& base) {
  std::string name = base.empty() ? "value" : base;
  for (int k = 1; taken_.count(name) || reserved_.count(name); ++k) {
    name = base + "_" + std::to_string(k);
  }
  taken_.insert(name);
  return name;
}

void OnnxBuilder::add_input(const std::string& name, ElementType type,
                            const std::vector<int64_t>& shape) {
  taken_.insert(name);
  set_value_info(impl_->graph.add_input(), name, type, shape);
}

void OnnxBuilder::add_output(const std::string& name, ElementType type,
                             const std::vector<int64_t>& shape) {
  set_value_info(impl_->graph.add_output(), name, type, shape);
}

std::string OnnxBuilder::add_initializer(const std::string& base, ElementType type,
                                         const std::vector<int64_t>& dims, std::string raw_bytes) {
  const std::string name = unique(base);
  onnx_proto::TensorProto* tensor = impl_->graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(static_cast<int32_t>(type));
  for (int64_t d : dims) tensor->add_dims(d);
  tensor->set_raw_data(std::move(raw_bytes));
  return name;
}

std::string OnnxBuilder::add_floats(const std::string& base, const std::vector<int64_t>& dims,
                                    const std::vector<float>& values) {
  if (element_count(dims) != static_cast<int64_t>(values.size())) {
    throw ExportError("internal error: initializer '" + base + "' has the wrong element count");
  }
  return add_initializer(base, ElementType::Float, dims, raw_bytes_of(values));
}

std::string OnnxBuilder::add_float_scalar(const std::string& base, float value) {
  return add_floats(base, {}, {value});
}

std::string OnnxBuilder::add_int64s(const std::string& base, const std::vector<int64_t>& dims,
                                    const std::vector<int64_t>& values) {
  if (element_count(dims) != static_cast<int64_t>(values.size())) {
    throw ExportError("internal error: initializer '" + base + "' has the wrong element count");
  }
  return add_initializer(base, ElementType::Int64, dims, raw_bytes_of(values));
}

std::string OnnxBuilder::add_int32s(const std::string& base, const std::vector<int64_t>& dims,
                                    const std::vector<int32_t>& values) {
  if (element_count(dims) != static_cast<int64_t>(values.size())) {
    throw ExportError("internal error: initializer '" + base + "' has the wrong element count");
  }
  return add_initializer(base, ElementType::Int32, dims, raw_bytes_of(values));
}

std::string OnnxBuilder::add_small_ints(const std::string& base, ElementType type,
                                        const std::vector<int64_t>& dims,
                                        const std::vector<int32_t>& values) {
  if (element_count(dims) != static_cast<int64_t>(values.size())) {
    throw ExportError("internal error: initializer '" + base + "' has the wrong element count");
  }
  std::string bytes;
  if (type == ElementType::Int4 || type == ElementType::UInt4) {
    bytes.assign((values.size() + 1) / 2, '\0');
    for (size_t k = 0; k < values.size(); ++k) {
      const auto nibble = static_cast<unsigned char>(static_cast<unsigned>(values[k]) & 0xFu);
      bytes[k / 2] = static_cast<char>(static_cast<unsigned char>(bytes[k / 2]) |
                                       (k % 2 ? nibble << 4 : nibble));
    }
  } else {
    bytes.reserve(values.size());
    for (int32_t v : values) bytes.push_back(static_cast<char>(static_cast<unsigned char>(v)));
  }
  return add_initializer(base, type, dims, std::move(bytes));
}

std::vector<std::string> OnnxBuilder::add_node(const std::string& op_type,
                                               const std::vector<std::string>& inputs,
                                               const std::vector<std::string>& outputs,
                                               const std::vector<Attribute>& attributes,
                                               const std::string& domain) {
  onnx_proto::NodeProto* node = impl_->graph.add_node();
  node->set_op_type(op_type);
  if (!domain.empty()) node->set_domain(domain);
  for (const std::string& input : inputs) node->add_input(input);
  std::vector<std::string> names;
  for (const std::string& output : outputs) {
    // A reserved name is the model output this node produces: it keeps it, once.
    std::string name = output;
    if (reserved_.count(output) && !taken_.count(output)) {
      taken_.insert(output);
    } else {
      name = unique(output);
    }
    node->add_output(name);
    names.push_back(name);
  }
  node->set_name(unique(names.empty() ? op_type : names[0] + "_" + op_type));
  for (const Attribute& attribute : attributes) set_attribute(node->add_attribute(), attribute);
  return names;
}

std::string OnnxBuilder::add(const std::string& op_type, const std::vector<std::string>& inputs,
                             const std::string& output, const std::vector<Attribute>& attributes) {
  return add_node(op_type, inputs, {output}, attributes)[0];
}

int64_t ir_version_for_opset(int64_t opset) {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

std::string OnnxBuilder::serialize(
    int64_t opset, const std::vector<std::pair<std::string, std::string>>& metadata) const {
  onnx_proto::ModelProto model;
  model.set_ir_version(ir_version_for_opset(opset));
  model.set_producer_name("linquant");
  model.set_producer_version(LINQUANT_VERSION_STRING);
  onnx_proto::OperatorSetIdProto* set = model.add_opset_import();
  set->set_domain("");
  set->set_version(opset);
  *model.mutable_graph() = impl_->graph;
  for (const auto& [key, value] : metadata) {
    onnx_proto::StringStringEntryProto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    throw ExportError("cannot serialize the ONNX model (over protobuf's 2 GB message limit?)");
  }
  return bytes;
}

}  // namespace linquant::onnx
