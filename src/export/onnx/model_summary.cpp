// Reads an ONNX file back with the subset schema linquant writes (onnx_model.proto). Fields of
// ONNX that the subset lacks are kept by protobuf as unknown fields and ignored here.
#include "linquant/export/onnx/model_summary.h"

#include "linquant/export/export_error.h"
#include "onnx_model.pb.h"

namespace linquant::onnx {
namespace {

std::string element_type_name(int32_t type) {
  switch (type) {
    case 1:
      return "float";
    case 2:
      return "uint8";
    case 3:
      return "int8";
    case 6:
      return "int32";
    case 7:
      return "int64";
    case 9:
      return "bool";
    case 10:
      return "float16";
    case 11:
      return "double";
    case 21:
      return "uint4";
    case 22:
      return "int4";
    default:
      return "type " + std::to_string(type);
  }
}

// Bytes of a tensor's elements from its dims (its data may be raw or in typed fields).
int64_t tensor_bytes(const onnx_proto::TensorProto& tensor) {
  int64_t count = 1;
  for (int64_t d : tensor.dims()) count *= d;
  switch (tensor.data_type()) {
    case 2:
    case 3:
    case 9:
      return count;
    case 10:
      return 2 * count;
    case 7:
    case 11:
      return 8 * count;
    case 21:
    case 22:
      return (count + 1) / 2;
    default:
      return 4 * count;
  }
}

ModelSummary::Value value_of(const onnx_proto::ValueInfoProto& info) {
  ModelSummary::Value value;
  value.name = info.name();
  const auto& tensor = info.type().tensor_type();
  value.type = element_type_name(tensor.elem_type());
  for (const auto& dim : tensor.shape().dim()) {
    value.shape.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  }
  return value;
}

std::string joined(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

}  // namespace

ModelSummary summarize_model(const std::string& bytes) {
  onnx_proto::ModelProto model;
  if (!model.ParseFromString(bytes) || !model.has_graph() || model.ir_version() <= 0) {
    throw ExportError("not an ONNX model (no ModelProto with a graph and an IR version)");
  }
  ModelSummary summary;
  summary.ir_version = model.ir_version();
  summary.producer = model.producer_name();
  if (!model.producer_version().empty()) summary.producer += " " + model.producer_version();
  for (const auto& set : model.opset_import()) {
    if (set.domain().empty() || set.domain() == "ai.onnx") summary.opset = set.version();
  }
  const onnx_proto::GraphProto& graph = model.graph();
  for (const auto& input : graph.input()) summary.inputs.push_back(value_of(input));
  for (const auto& output : graph.output()) summary.outputs.push_back(value_of(output));
  for (const auto& node : graph.node()) {
    const std::string op =
        node.domain().empty() ? node.op_type() : node.domain() + "." + node.op_type();
    ++summary.op_counts[op];
    summary.nodes.push_back(op + " " + node.name() + ": " + joined(node.input()) + " -> " +
                            joined(node.output()));
  }
  for (const auto& tensor : graph.initializer()) {
    ++summary.initializer_count;
    summary.initializer_bytes[element_type_name(tensor.data_type())] += tensor_bytes(tensor);
  }
  for (const auto& entry : model.metadata_props()) summary.metadata[entry.key()] = entry.value();
  return summary;
}

}  // namespace linquant::onnx
