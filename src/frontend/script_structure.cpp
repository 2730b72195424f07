// Values that are not activations: lists and tuples, casts, None checks, and constant folding
// with TorchScript's own operator implementations. Sizes and arithmetic on them become IR
// values computed when the model runs (script_generic_op.cpp).
#include <torch/csrc/jit/runtime/operator.h>

#include "script_interpreter.h"

namespace linquant::frontend::script {
namespace {

namespace aten = c10::aten;
namespace prim = c10::prim;
using Kind = SymValue::Kind;

bool all_constant(const std::vector<SymValue>& values) {
  for (const SymValue& value : values) {
    if (!value.is(Kind::constant)) return false;
  }
  return true;
}

// A value that is certainly not None: an activation, a parameter, a module, a list.
bool certainly_present(const SymValue& value) {
  return value.is(Kind::tensor) || value.is(Kind::model_tensor) || value.is(Kind::module) ||
         value.is(Kind::sequence) || value.is(Kind::function);
}

// A list or tuple of constants as one constant, typed like TorchScript's own (int[] etc.),
// so that folding later ops on it works.
SymValue constant_sequence(const torch::jit::Node* node, const std::vector<SymValue>& items) {
  std::vector<c10::IValue> values;
  for (const SymValue& item : items) values.push_back(item.constant);
  if (node->kind() == prim::TupleConstruct) {
    return SymValue::make_constant(c10::ivalue::Tuple::create(std::move(values)));
  }
  c10::impl::GenericList list(node->output()->type()->expectRef<c10::ListType>().getElementType());
  for (c10::IValue& value : values) list.push_back(std::move(value));
  return SymValue::make_constant(c10::IValue(std::move(list)));
}

}  // namespace

std::optional<std::vector<SymValue>> items_of(const SymValue& value) {
  if (value.is(Kind::sequence)) return value.items;
  if (!value.is(Kind::constant)) return std::nullopt;
  std::vector<SymValue> items;
  if (value.constant.isList()) {
    for (const c10::IValue& item : value.constant.toListRef()) {
      items.push_back(SymValue::make_constant(item));
    }
  } else if (value.constant.isTuple()) {
    for (const c10::IValue& item : value.constant.toTupleRef().elements()) {
      items.push_back(SymValue::make_constant(item));
    }
  } else {
    return std::nullopt;
  }
  return items;
}

bool Interpreter::run_structural(torch::jit::Node* node, Frame& frame) {
  const c10::Symbol kind = node->kind();
  std::vector<SymValue> inputs;
  for (const torch::jit::Value* input : node->inputs()) inputs.push_back(lookup(frame, input));

  if (kind == prim::ListConstruct || kind == prim::TupleConstruct) {
    bind(frame, node->output(), all_constant(inputs) ? constant_sequence(node, inputs)
                                                     : SymValue::make_sequence(inputs));
    return true;
  }
  if (kind == prim::ListUnpack || kind == prim::TupleUnpack) {
    if (inputs.at(0).is(Kind::value)) {  // a list computed when the model runs (chunk, split)
      unpack(node, frame, inputs.at(0).tensor);
      return true;
    }
    const auto items = items_of(inputs.at(0));
    if (!items || items->size() != node->outputs().size()) return false;
    for (size_t k = 0; k < items->size(); ++k) bind(frame, node->output(k), (*items)[k]);
    return true;
  }
  if (kind == prim::TupleIndex || kind == aten::__getitem__) {
    const auto items = items_of(inputs.at(0));
    const SymValue& index = inputs.at(1);
    if (!items || !index.is(Kind::constant) || !index.constant.isInt()) return false;
    int64_t k = index.constant.toInt();
    if (k < 0) k += static_cast<int64_t>(items->size());
    if (k < 0 || k >= static_cast<int64_t>(items->size())) return false;
    bind(frame, node->output(), (*items)[static_cast<size_t>(k)]);
    return true;
  }
  // Scripted code collects tensors with list.append before torch.cat.
  if (kind == aten::append) {
    auto items = items_of(inputs.at(0));
    if (!items) return false;
    items->push_back(inputs.at(1));
    const SymValue list = SymValue::make_sequence(std::move(*items));
    bind(frame, node->input(0), list);  // append mutates the list in place
    bind(frame, node->output(), list);
    return true;
  }
  if (kind == aten::len && inputs.at(0).is(Kind::sequence)) {
    bind(frame, node->output(),
         SymValue::make_constant(static_cast<int64_t>(inputs.at(0).items.size())));
    return true;
  }
  if (kind == prim::unchecked_cast) {
    bind(frame, node->output(), inputs.at(0));
    return true;
  }
  // Traced models turn sizes into tensors and back (aten::Int(prim::NumToTensor(n))): still n.
  if ((kind == aten::Int || kind == aten::ScalarImplicit) && inputs.at(0).is(Kind::tensor)) {
    if (const auto number = number_behind_tensor(inputs.at(0).tensor)) {
      bind(frame, node->output(), SymValue::make_value(*number));
      return true;
    }
  }
  if (kind == aten::__is__ || kind == aten::__isnot__) {
    const SymValue& a = inputs.at(0);
    const SymValue& b = inputs.at(1);
    if (all_constant(inputs)) return false;
    const bool none_against_present = (a.is_none() && certainly_present(b)) ||
                                      (b.is_none() && certainly_present(a));
    if (!none_against_present) return false;
    bind(frame, node->output(), SymValue::make_constant(kind == aten::__isnot__));
    return true;
  }
  if (kind == prim::Uninitialized) {
    bind(frame, node->output(), SymValue::make_unknown("an uninitialized value"));
    return true;
  }
  return false;
}

bool Interpreter::fold_constant(torch::jit::Node* node, Frame& frame) {
  if (!node->blocks().empty() || node->hasSideEffects() || node->outputs().empty()) return false;
  const bool makes_tensor_constant = node->kind() == prim::NumToTensor;
  for (const torch::jit::Value* output : node->outputs()) {
    if (is_tensor_type(output) && !makes_tensor_constant) return false;
  }
  torch::jit::Stack stack;
  for (const torch::jit::Value* input : node->inputs()) {
    const SymValue& value = lookup(frame, input);
    if (!value.is(Kind::constant)) return false;
    stack.push_back(value.constant);
  }
  try {
    torch::jit::Operation operation = node->getOperation();
    operation(stack);
  } catch (const std::exception&) {
    return false;  // no implementation, or the model's own check failed: leave it unknown
  }
  if (stack.size() < node->outputs().size()) return false;
  const size_t first = stack.size() - node->outputs().size();
  for (size_t k = 0; k < node->outputs().size(); ++k) {
    bind(frame, node->output(k), SymValue::make_constant(stack[first + k]));
  }
  return true;
}

}  // namespace linquant::frontend::script
