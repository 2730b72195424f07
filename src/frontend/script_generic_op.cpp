// Every op without a linquant rule becomes a torch_op node: the LibTorch operator its schema
// names, run as TorchScript runs it. Its arguments become IR values (constants, model tensors
// and lists get nodes of their own), so shapes computed from x.size() follow the batch size,
// and model tensors used as values (class tokens, layer scales) stay trainable.
#include <torch/csrc/jit/runtime/operator.h>

#include "linquant/ir/attribute_keys.h"
#include "node_emit.h"
#include "script_interpreter.h"

namespace linquant::frontend::script {
namespace {

using Kind = SymValue::Kind;

bool is_tensor(const c10::TypePtr& type) { return type->isSubtypeOf(*c10::TensorType::get()); }

ir::ValueType value_type_of(const c10::TypePtr& type) {
  if (is_tensor(type)) return ir::ValueType::tensor;
  if (const auto list = type->cast<c10::ListType>()) {
    if (is_tensor(list->getElementType())) return ir::ValueType::tensor_list;
  }
  return ir::ValueType::other;
}

ir::ValueType value_type_of(const c10::IValue& value) {
  if (value.isTensor()) return ir::ValueType::tensor;
  if (value.isTensorList()) return ir::ValueType::tensor_list;
  return ir::ValueType::other;
}

// "aten::squeeze.dim": the name the runtime finds the operator by.
std::string operator_name(const c10::FunctionSchema& schema) {
  const c10::OperatorName& name = schema.operator_name();
  return name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
}

// The element type a list node builds its runtime list with (lists are typed in LibTorch).
std::optional<std::string> element_type(const c10::TypePtr& type) {
  if (type->cast<c10::TupleType>()) return "tuple";
  const auto list = type->cast<c10::ListType>();
  if (!list) return std::nullopt;
  const c10::TypePtr& element = list->getElementType();
  if (is_tensor(element)) return "Tensor";
  if (element->kind() == c10::TypeKind::IntType) return "int";
  if (element->kind() == c10::TypeKind::FloatType) return "float";
  if (element->kind() == c10::TypeKind::BoolType) return "bool";
  if (const auto optional = element->cast<c10::OptionalType>()) {
    if (is_tensor(optional->getElementType())) return "Tensor?";
  }
  return std::nullopt;
}

c10::TypePtr item_type(const c10::TypePtr& sequence, size_t k) {
  if (const auto tuple = sequence->cast<c10::TupleType>()) {
    if (k < tuple->elements().size()) return tuple->elements()[k];
  }
  if (const auto list = sequence->cast<c10::ListType>()) return list->getElementType();
  return c10::AnyType::get();
}

}  // namespace

// "size", or "layer1.0.bn1.size" inside a leaf module: the module's own node keeps its name.
std::string Interpreter::node_name(const ir::Scope& where, const std::string& op) const {
  const bool module_call = !where.functional && !where.module_name.empty();
  return graph_.unique_node_name(module_call ? where.module_name + "." + op : op);
}

ir::ValueId Interpreter::emit_value(ir::Op op, std::vector<ir::ValueId> inputs,
                                    ir::Attributes attrs, const ir::Scope& where,
                                    ir::ValueType type, const std::string& name) {
  return emit_named_node(graph_, op, std::move(inputs), std::move(attrs), where, {type},
                         node_name(where, name))[0];
}

void Interpreter::unpack(torch::jit::Node* node, Frame& frame, ir::ValueId list) {
  std::vector<ir::ValueType> types;
  for (const torch::jit::Value* output : node->outputs()) types.push_back(value_type_of(output->type()));
  const ir::Scope where = scope(frame, node);
  const auto outputs = emit_named_node(graph_, ir::Op::unpack, {list}, {}, where, types,
                                       node_name(where, "unpack"));
  for (size_t k = 0; k < outputs.size(); ++k) {
    bind(frame, node->output(k), types[k] == ir::ValueType::tensor
                                     ? SymValue::make_tensor(outputs[k])
                                     : SymValue::make_value(outputs[k]));
  }
}

std::optional<ir::ValueId> Interpreter::number_behind_tensor(ir::ValueId tensor) const {
  const auto producer = graph_.producer(tensor);
  if (!producer) return std::nullopt;
  const ir::Node& node = graph_.nodes()[*producer];
  if (node.op != ir::Op::torch_op || node.attrs.s(ir::attr::schema) != "prim::NumToTensor.Scalar") {
    return std::nullopt;
  }
  return node.inputs.at(0);
}

std::optional<std::pair<ir::ValueId, int64_t>> Interpreter::size_source(ir::ValueId value) const {
  const auto producer = graph_.producer(value);
  if (!producer) return std::nullopt;
  const ir::Node& node = graph_.nodes()[*producer];
  if (node.op != ir::Op::torch_op || node.attrs.s(ir::attr::schema) != "aten::size.int")
    return std::nullopt;
  const auto dim_producer = graph_.producer(node.inputs.at(1));
  if (!dim_producer) return std::nullopt;
  const ir::Node& dim = graph_.nodes()[*dim_producer];
  if (dim.op != ir::Op::constant || !dim.attrs.constant(ir::attr::value).isInt())
    return std::nullopt;
  return std::make_pair(node.inputs.at(0), dim.attrs.constant(ir::attr::value).toInt());
}

ir::ValueId Interpreter::materialize(const SymValue& value, const c10::TypePtr& type,
                                     const Frame& frame, const torch::jit::Node* node) {
  const ir::Scope where = scope(frame, node);
  switch (value.kind) {
    case Kind::tensor:
    case Kind::value: return value.tensor;
    case Kind::constant: {
      ir::Attributes attrs;
      attrs.set(ir::attr::value, ir::make_constant(value.constant));
      return emit_value(ir::Op::constant, {}, std::move(attrs), where,
                        value_type_of(value.constant), "constant");
    }
    case Kind::model_tensor: {
      const std::string key = value.name + (value.transposed ? ".t" : "");
      if (const auto it = model_tensor_values_.find(key); it != model_tensor_values_.end()) {
        return it->second;
      }
      ir::ValueId id;
      if (const auto it = model_tensor_values_.find(value.name); it != model_tensor_values_.end()) {
        id = it->second;
      } else {
        ir::Attributes attrs;
        attrs.set(ir::attr::tensor, value.name);
        id = emit_value(ir::Op::model_tensor, {}, std::move(attrs), where,
                        ir::ValueType::tensor, value.name);
        model_tensor_values_[value.name] = id;
      }
      if (value.transposed) {
        ir::Attributes attrs;
        attrs.set(ir::attr::schema, std::string("aten::t"));
        id = emit_value(ir::Op::torch_op, {id}, std::move(attrs), where,
                        ir::ValueType::tensor, "t");
        model_tensor_values_[key] = id;
      }
      return id;
    }
    case Kind::sequence: {
      const auto element = element_type(type);
      if (!element) {
        fail(frame, node, std::string(node->kind().toQualString()) + " with an argument of type " +
                              type->str() + " (a list linquant cannot build)");
      }
      std::vector<ir::ValueId> items;
      for (size_t k = 0; k < value.items.size(); ++k) {
        items.push_back(materialize(value.items[k], item_type(type, k), frame, node));
      }
      ir::Attributes attrs;
      attrs.set(ir::attr::element_type, *element);
      return emit_value(ir::Op::list, std::move(items), std::move(attrs), where,
                        *element == "Tensor" ? ir::ValueType::tensor_list : ir::ValueType::other,
                        "list");
    }
    default: break;
  }
  fail(frame, node, std::string(node->kind().toQualString()) + " reading " + describe(value));
}

void Interpreter::run_generic(torch::jit::Node* node, Frame& frame) {
  const std::string kind = node->kind().toQualString();
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (!schema || schema->is_vararg() || !torch::jit::findOperatorFor(schema->operator_name())) {
    fail(frame, node, kind + " (LibTorch has no operator for it outside TorchScript's own "
                             "interpreter)");
  }
  std::vector<ir::ValueId> inputs;
  for (const torch::jit::Value* input : node->inputs()) {
    inputs.push_back(materialize(lookup(frame, input), input->type(), frame, node));
  }
  std::vector<ir::ValueType> types;
  for (const torch::jit::Value* output : node->outputs()) types.push_back(value_type_of(output->type()));
  ir::Attributes attrs;
  // The IR drops contiguous() (it changes no value), so a view may meet a non-contiguous
  // input: reshape computes the same values and copies when it must.
  const std::string op_name = operator_name(*schema);
  attrs.set(ir::attr::schema, op_name == "aten::view" ? std::string("aten::reshape") : op_name);
  const auto& arguments = schema->arguments();
  const bool in_place = !arguments.empty() && arguments[0].alias_info() &&
                        arguments[0].alias_info()->isWrite();
  if (schema->is_mutable()) attrs.set("mutates", true);  // kept by remove_dead_values
  const std::string& name = schema->name();
  const ir::Scope where = scope(frame, node);
  const auto outputs = emit_named_node(graph_, ir::Op::torch_op, std::move(inputs),
                                       std::move(attrs), where, types,
                                       node_name(where, name.substr(name.find("::") + 2)));
  for (size_t k = 0; k < outputs.size(); ++k) {
    bind(frame, node->output(k), types[k] == ir::ValueType::tensor
                                     ? SymValue::make_tensor(outputs[k])
                                     : SymValue::make_value(outputs[k]));
  }
  // An in-place op returns its first argument, modified: later reads of it read the result.
  if (in_place && !outputs.empty() && lookup(frame, node->input(0)).is(Kind::tensor)) {
    bind(frame, node->input(0), SymValue::make_tensor(outputs[0]));
  }
}

void remove_dead_values(ir::Graph& graph) {
  const auto& nodes = graph.nodes();
  std::vector<int> uses(graph.num_values(), 0);
  for (const ir::Node& node : nodes) {
    for (ir::ValueId id : node.inputs) ++uses[static_cast<size_t>(id)];
  }
  for (ir::ValueId id : graph.outputs()) ++uses[static_cast<size_t>(id)];
  std::vector<bool> dead(nodes.size(), false);
  for (size_t n = nodes.size(); n-- > 0;) {
    const ir::Node& node = nodes[n];
    const bool removable =
        node.op == ir::Op::constant || node.op == ir::Op::model_tensor || node.op == ir::Op::list ||
        node.op == ir::Op::unpack ||
        (node.op == ir::Op::torch_op && !node.attrs.b("mutates", false));
    if (!removable) continue;
    bool used = false;
    for (ir::ValueId id : node.outputs) used = used || uses[static_cast<size_t>(id)] > 0;
    if (used) continue;
    dead[n] = true;
    for (ir::ValueId id : node.inputs) --uses[static_cast<size_t>(id)];
  }
  graph.remove_nodes(dead);
}

}  // namespace linquant::frontend::script
