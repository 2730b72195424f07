// Context: the value map, the per-consumer DequantizeLinear nodes, shared constants and naming
// that every op lowering uses.
#include <ATen/ATen.h>

#include <cstring>

#include "../graph/grid_weight.h"
#include "lowering.h"

namespace linquant::onnx::lowering {

Context::Context(const ir::Graph& graph, OnnxBuilder& builder, const SaveOptions& options,
                 std::map<ir::ValueId, std::string> output_names, const ConstantValues* constants)
    : graph_(graph),
      builder_(builder),
      options_(options),
      output_names_(std::move(output_names)),
      constants_(constants) {}

void Context::define(ir::ValueId id, std::string name) { floats_[id] = std::move(name); }

void Context::define_quantized(ir::ValueId id, QuantizedValue value) {
  quantized_[id] = std::move(value);
}

const QuantizedValue* Context::quantized(ir::ValueId id) const {
  const auto it = quantized_.find(id);
  return it == quantized_.end() ? nullptr : &it->second;
}

bool Context::is_defined(ir::ValueId id) const {
  return floats_.count(id) != 0 || quantized_.count(id) != 0;
}

bool Context::is_constant(ir::ValueId id) const {
  const auto k = static_cast<size_t>(id);
  return constants_ && k < constants_->known.size() && constants_->known[k];
}

const at::Tensor Context::constant_tensor(const ir::Node& node, size_t k) const {
  const ir::ValueId id = node.inputs.at(k);
  if (!is_constant(id)) {
    fail(node, "input " + std::to_string(k) + " depends on the input data; it must be a constant");
  }
  const c10::IValue& value = constants_->values.at(static_cast<size_t>(id));
  if (!value.isTensor()) fail(node, "input " + std::to_string(k) + " is not a tensor");
  return value.toTensor().detach().contiguous();
}

std::string Context::input(const ir::Node& node, size_t k) {
  if (k >= node.inputs.size()) {
    fail(node, "expected at least " + std::to_string(k + 1) + " inputs, it has " +
                   std::to_string(node.inputs.size()));
  }
  const ir::ValueId id = node.inputs[k];
  if (const auto it = floats_.find(id); it != floats_.end()) return it->second;
  if (const QuantizedValue* q = quantized(id)) {
    const auto key = std::make_pair(id, &node);
    if (const auto it = dequantized_.find(key); it != dequantized_.end()) return it->second;
    const std::string name =
        dequantize(*q, graph_.value(id).name + "_dequantized_for_" + node.name);
    dequantized_.emplace(key, name);
    return name;
  }
  if (is_constant(id)) {
    const at::Tensor t = constant_tensor(node, k);
    std::string name;
    if (t.is_floating_point()) {
      name = builder_.add_floats(graph_.value(id).name, t.sizes().vec(),
                                 graph_export::float_vector(t));
    } else if (t.scalar_type() == at::kLong || t.scalar_type() == at::kInt) {
      const at::Tensor l = t.to(at::kLong).contiguous();
      name = builder_.add_int64s(
          graph_.value(id).name, t.sizes().vec(),
          std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel()));
    } else {
      fail(node, std::string("a constant ") + c10::toString(t.scalar_type()) +
                     " tensor input has no ONNX export yet");
    }
    floats_[id] = name;
    return name;
  }
  throw ExportError(graph_export::node_label(node) + "internal error: value %" +
                    graph_.value(id).name + " has no ONNX value yet");
}

std::string Context::output_value(ir::ValueId id, const std::string& name) {
  if (const auto it = floats_.find(id); it != floats_.end()) return it->second;
  if (const QuantizedValue* q = quantized(id)) return dequantize(*q, name);
  throw ExportError("internal error: graph output %" + graph_.value(id).name +
                    " has no ONNX value");
}

std::string Context::zero_point(const ActivationQParams& q) {
  const auto key = std::make_pair(q.is_signed(), q.zero_point);
  if (const auto it = zero_points_.find(key); it != zero_points_.end()) return it->second;
  const ElementType type = q.is_signed() ? ElementType::Int8 : ElementType::UInt8;
  const std::string name = builder_.add_small_ints(
      std::string("zero_point_") + to_string(type) + "_" + std::to_string(q.zero_point), type, {},
      {static_cast<int32_t>(q.zero_point)});
  zero_points_.emplace(key, name);
  return name;
}

std::string Context::quantize(const std::string& x, const ActivationQParams& q,
                              const std::string& name) {
  return builder_.add("QuantizeLinear",
                      {x, float_scalar(static_cast<float>(q.scale)), zero_point(q)}, name);
}

std::string Context::dequantize(const QuantizedValue& value, const std::string& name) {
  return builder_.add("DequantizeLinear",
                      {value.integer, float_scalar(static_cast<float>(value.qparams.scale)),
                       zero_point(value.qparams)},
                      name);
}

const std::vector<int64_t>& Context::shape(ir::ValueId id) const { return graph_.value(id).shape; }

const at::Tensor& Context::model_tensor(const ir::Node& node, const std::string& key) const {
  return graph_export::model_tensor(graph_, node, key);
}

std::string Context::output_name(const ir::Node& node, size_t k) const {
  const ir::ValueId id = node.outputs.at(k);
  if (const auto it = output_names_.find(id); it != output_names_.end()) return it->second;
  return graph_.value(id).name;
}

std::string Context::helper_name(const ir::Node& node, const std::string& suffix) const {
  return graph_.value(node.outputs.at(0)).name + "_" + suffix;
}

std::string Context::float_scalar(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  if (const auto it = float_scalars_.find(bits); it != float_scalars_.end()) return it->second;
  const std::string name = builder_.add_float_scalar("scalar", value);
  float_scalars_.emplace(bits, name);
  return name;
}

std::string Context::int64s(const std::vector<int64_t>& values) {
  if (const auto it = int64_lists_.find(values); it != int64_lists_.end()) return it->second;
  const std::string name =
      builder_.add_int64s("ints", {static_cast<int64_t>(values.size())}, values);
  int64_lists_.emplace(values, name);
  return name;
}

}  // namespace linquant::onnx::lowering
