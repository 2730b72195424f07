// The ops that carry values rather than compute on activations: torch_op calls the LibTorch
// operator capture found (through the dispatcher or TorchScript's operator registry, so
// autograd records it), constant and model_tensor produce their value, list builds the typed
// list LibTorch's operators expect, unpack takes a list or tuple apart.
#include <torch/csrc/jit/runtime/operator.h>

#include <string>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

c10::IValue make_list(const std::string& element_type, std::vector<c10::IValue>& items) {
  if (element_type == "tuple") return c10::ivalue::Tuple::create(std::move(items));
  if (element_type == "Tensor") {
    c10::List<at::Tensor> list;
    for (c10::IValue& item : items) list.push_back(item.toTensor());
    return list;
  }
  if (element_type == "Tensor?") {
    c10::List<c10::optional<at::Tensor>> list;
    for (c10::IValue& item : items) {
      list.push_back(item.isNone() ? c10::optional<at::Tensor>() : item.toTensor());
    }
    return list;
  }
  if (element_type == "int") {
    c10::List<int64_t> list;
    for (c10::IValue& item : items) list.push_back(item.toInt());
    return list;
  }
  if (element_type == "float") {
    c10::List<double> list;
    for (c10::IValue& item : items) list.push_back(item.toDouble());
    return list;
  }
  if (element_type == "bool") {
    c10::List<bool> list;
    for (c10::IValue& item : items) list.push_back(item.toBool());
    return list;
  }
  throw Error("cannot build a list of " + element_type);
}

std::vector<c10::IValue> unpack(const c10::IValue& value, size_t expected) {
  std::vector<c10::IValue> items;
  if (value.isTuple()) {
    for (const c10::IValue& item : value.toTupleRef().elements()) items.push_back(item);
  } else if (value.isList()) {
    for (const c10::IValue& item : value.toListRef()) items.push_back(item);
  } else {
    throw Error("unpack of a value that is neither a list nor a tuple");
  }
  if (items.size() != expected) {
    throw Error("unpack of " + std::to_string(items.size()) + " elements into " +
                std::to_string(expected) + " values");
  }
  return items;
}

}  // namespace

torch::jit::Operation resolve_operator(const ir::Node& node) {
  const std::string& schema = node.attrs.s(ir::attr::schema);
  const size_t dot = schema.find('.', schema.find("::") + 2);
  const c10::OperatorName name{schema.substr(0, dot),
                               dot == std::string::npos ? "" : schema.substr(dot + 1)};
  const std::shared_ptr<torch::jit::Operator> op = torch::jit::findOperatorFor(name);
  if (!op || op->schema().is_vararg()) {
    throw Error("LibTorch has no operator '" + schema + "' that can run outside TorchScript");
  }
  if (op->schema().arguments().size() != node.inputs.size() ||
      op->schema().returns().size() != node.outputs.size()) {
    throw Error("operator '" + schema + "' takes " +
                std::to_string(op->schema().arguments().size()) + " arguments and returns " +
                std::to_string(op->schema().returns().size()) + " values; the node has " +
                std::to_string(node.inputs.size()) + " inputs and " +
                std::to_string(node.outputs.size()) + " outputs");
  }
  return op->getOperation();
}

std::vector<c10::IValue> run_value_op(const ir::Node& node, std::vector<c10::IValue> inputs,
                                      const RunContext& context) {
  switch (node.op) {
    case ir::Op::torch_op: {
      const auto it = context.operations.find(&node);
      if (it == context.operations.end()) throw Error("the operator was not resolved");
      torch::jit::Stack stack = std::move(inputs);
      torch::jit::Operation operation = it->second;  // its call operator is not const
      operation(stack);
      if (stack.size() != node.outputs.size()) {
        throw Error("the operator left " + std::to_string(stack.size()) + " values for " +
                    std::to_string(node.outputs.size()) + " outputs");
      }
      return stack;
    }
    case ir::Op::constant:
      return {node.attrs.constant(ir::attr::value)};
    case ir::Op::model_tensor:
      return {context.graph.tensor(node.attrs.s(ir::attr::tensor)).tensor};
    case ir::Op::list:
      return {make_list(node.attrs.s(ir::attr::element_type), inputs)};
    case ir::Op::unpack: return unpack(inputs.at(0), node.outputs.size());
    default: throw Error("is not a value op");
  }
}

}  // namespace linquant::runtime
