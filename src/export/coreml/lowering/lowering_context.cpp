// LoweringContext: the value map, recorded shapes, precision-aware constants and naming that
// every op lowering uses.
#include <ATen/ATen.h>

#include <utility>

#include "linquant/export/coreml/identifier.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {

std::vector<std::int32_t> to_int32(const ir::Node& node, const std::vector<int64_t>& values) {
  std::vector<std::int32_t> out;
  out.reserve(values.size());
  for (int64_t v : values) {
    if (v < INT32_MIN || v > INT32_MAX) {
      fail(node, "value " + std::to_string(v) + " does not fit the int32 Core ML expects");
    }
    out.push_back(static_cast<std::int32_t>(v));
  }
  return out;
}

LoweringContext::LoweringContext(const ir::Graph& graph, ProgramBuilder& builder,
                                 ComputePrecision precision,
                                 std::map<ir::ValueId, std::string> output_names,
                                 std::set<std::string> reserved_names,
                                 const ConstantValues* constants)
    : graph_(graph),
      builder_(builder),
      precision_(precision),
      output_names_(std::move(output_names)),
      reserved_names_(std::move(reserved_names)),
      constants_(constants) {}

DType LoweringContext::float_dtype() const {
  return precision_ == ComputePrecision::Float16 ? DType::Float16 : DType::Float32;
}

TensorValue LoweringContext::float_values(Shape shape, const std::vector<float>& values) const {
  return precision_ == ComputePrecision::Float16 ? TensorValue::float16(std::move(shape), values)
                                                 : TensorValue::float32(std::move(shape), values);
}

TensorValue LoweringContext::float_scalar(double value) const {
  const auto v = static_cast<float>(value);
  return precision_ == ComputePrecision::Float16 ? TensorValue::scalar_float16(v)
                                                 : TensorValue::scalar_float32(v);
}

TensorValue LoweringContext::float_tensor(const at::Tensor& tensor) const {
  const at::Tensor t = tensor.detach().to(at::kCPU).to(at::kFloat).contiguous();
  const float* data = t.data_ptr<float>();
  return float_values(t.sizes().vec(), std::vector<float>(data, data + t.numel()));
}

const at::Tensor& LoweringContext::model_tensor(const ir::Node& node,
                                                const std::string& key) const {
  return graph_export::model_tensor(graph_, node, key);
}

void LoweringContext::define(ir::ValueId id, const Var& var) { vars_[id] = var; }

const Var& LoweringContext::var(ir::ValueId id) const {
  const auto it = vars_.find(id);
  if (it == vars_.end()) {
    throw ExportError("internal error: value %" + graph_.value(id).name +
                      " has no Core ML variable yet");
  }
  return it->second;
}

const Var& LoweringContext::input(const ir::Node& node, size_t k) const {
  if (k >= node.inputs.size()) {
    fail(node, "expected at least " + std::to_string(k + 1) + " inputs, it has " +
                   std::to_string(node.inputs.size()));
  }
  const ir::ValueId id = node.inputs[k];
  if (!vars_.count(id) && is_constant(id)) {
    const c10::IValue& value = constant(node, k);
    if (!value.isTensor()) fail(node, "input " + std::to_string(k) + " is not a tensor");
    const at::Tensor t = value.toTensor().detach().contiguous();
    const std::string name = unreserved(sanitize_identifier(graph_.value(id).name));
    Var c;
    if (t.is_floating_point()) {
      c = builder_.add_const(name, float_tensor(t));
    } else if (t.scalar_type() == at::kBool) {
      const at::Tensor b = t.to(at::kBool);
      std::vector<bool> bits(static_cast<size_t>(b.numel()));
      const bool* data = b.data_ptr<bool>();
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = data[i];
      c = builder_.add_const(name, TensorValue::boolean(t.sizes().vec(), bits));
    } else {
      const at::Tensor i32 = t.to(at::kInt).contiguous();
      const int32_t* data = i32.data_ptr<int32_t>();
      c = builder_.add_const(name, TensorValue::int32(t.sizes().vec(),
                                                      std::vector<int32_t>(data, data + t.numel())));
    }
    vars_[id] = c;
  }
  return var(id);
}

bool LoweringContext::is_constant(ir::ValueId id) const {
  return constants_ && static_cast<size_t>(id) < constants_->known.size() &&
         constants_->known[static_cast<size_t>(id)];
}

const c10::IValue& LoweringContext::constant(const ir::Node& node, size_t k) const {
  if (k >= node.inputs.size() || !is_constant(node.inputs[k])) {
    fail(node, "input " + std::to_string(k) + " depends on the input data; the Core ML export "
               "needs it to be a constant of the program");
  }
  return constants_->values[static_cast<size_t>(node.inputs[k])];
}

int64_t LoweringContext::constant_int(const ir::Node& node, size_t k) const {
  const c10::IValue& v = constant(node, k);
  if (v.isInt()) return v.toInt();
  if (v.isTensor() && v.toTensor().numel() == 1) return v.toTensor().item<int64_t>();
  fail(node, "input " + std::to_string(k) + " is not an integer");
}

double LoweringContext::constant_double(const ir::Node& node, size_t k) const {
  const c10::IValue& v = constant(node, k);
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  if (v.isBool()) return v.toBool() ? 1.0 : 0.0;
  if (v.isTensor() && v.toTensor().numel() == 1) return v.toTensor().item<double>();
  fail(node, "input " + std::to_string(k) + " is not a number");
}

std::vector<int64_t> LoweringContext::constant_ints(const ir::Node& node, size_t k) const {
  const c10::IValue& v = constant(node, k);
  if (v.isInt()) return {v.toInt()};
  if (v.isIntList()) return v.toIntVector();
  if (v.isList()) {
    std::vector<int64_t> out;
    for (const c10::IValue& item : v.toListRef()) out.push_back(item.toInt());
    return out;
  }
  fail(node, "input " + std::to_string(k) + " is not a list of integers");
}

void LoweringContext::define_list(ir::ValueId id, std::vector<Var> vars) {
  lists_[id] = std::move(vars);
}

std::vector<Var> LoweringContext::list(const ir::Node& node, size_t k) const {
  const auto it = lists_.find(node.inputs.at(k));
  if (it != lists_.end()) return it->second;
  fail(node, "input " + std::to_string(k) + " is not a list of tensors the export built");
}

void LoweringContext::define_integer(ir::ValueId id, const IntegerForm& form) {
  integer_forms_[id] = form;
}

const IntegerForm* LoweringContext::integer_form(ir::ValueId id) const {
  const auto it = integer_forms_.find(id);
  return it == integer_forms_.end() ? nullptr : &it->second;
}

const Shape& LoweringContext::shape(ir::ValueId id) const { return graph_.value(id).shape; }

TensorType LoweringContext::float_type(ir::ValueId id) const {
  return TensorType{float_dtype(), shape(id)};
}

std::string LoweringContext::unreserved(std::string name) const {
  // Model output names belong to the values they name; nothing else may take them first.
  while (reserved_names_.count(name)) name += "_value";
  return name;
}

std::string LoweringContext::output_name(const ir::Node& node) const {
  const ir::ValueId id = node.outputs.at(0);
  const auto wanted = output_names_.find(id);
  if (wanted != output_names_.end()) return wanted->second;
  return unreserved(sanitize_identifier(graph_.value(id).name));
}

std::string LoweringContext::helper_name(const ir::Node& node, const std::string& suffix) const {
  return unreserved(sanitize_identifier(graph_.value(node.outputs.at(0)).name) + "_" + suffix);
}

}  // namespace linquant::coreml::lowering
