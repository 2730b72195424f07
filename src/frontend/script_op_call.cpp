// Argument access for tensor op rules, by the names of the op's schema so that overloads
// with different argument orders need no special cases.
#include "script_op_call.h"

#include "node_emit.h"

namespace linquant::frontend::script {

using Kind = SymValue::Kind;

std::optional<double> scalar_of(const SymValue& value) {
  if (!value.is(Kind::constant)) return std::nullopt;
  const c10::IValue& v = value.constant;
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  if (v.isBool()) return v.toBool() ? 1.0 : 0.0;
  if (v.isTensor() && v.toTensor().numel() == 1 && v.toTensor().dim() == 0) {
    return v.toTensor().item<double>();
  }
  return std::nullopt;
}

OpCall::OpCall(Interpreter& in, torch::jit::Node* n, Frame& f)
    : interpreter(in), node(n), frame(f), kind_(n->kind().toQualString()) {}

size_t OpCall::index_of(const char* name) const {
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (!schema) fail(kind_ + " without a known schema");
  const auto index = schema->argumentIndexWithName(name);
  if (!index || static_cast<size_t>(*index) >= node->inputs().size()) {
    fail(kind_ + " (overload " + schema->overload_name() + ") without the expected argument '" +
         name + "'");
  }
  return static_cast<size_t>(*index);
}

bool OpCall::has(const char* name) const {
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (!schema) return false;
  const auto index = schema->argumentIndexWithName(name);
  return index && static_cast<size_t>(*index) < node->inputs().size();
}

const SymValue& OpCall::arg(const char* name) const {
  return interpreter.lookup(frame, node->input(index_of(name)));
}

const SymValue& OpCall::input(size_t index) const {
  return interpreter.lookup(frame, node->input(index));
}

void OpCall::bad_argument(const char* name, const std::string& expected) const {
  fail(kind_ + " whose argument '" + name + "' is " + describe(arg(name)) + " (expected " +
       expected + ")");
}

ir::ValueId OpCall::tensor(const char* name) const {
  const SymValue& value = arg(name);
  if (!value.is(Kind::tensor)) bad_argument(name, "an activation tensor");
  return value.tensor;
}

ir::ValueId OpCall::first_tensor() const {
  const SymValue& value = input(0);
  if (!value.is(Kind::tensor)) {
    fail(kind_ + " whose first argument is " + describe(value) +
         " (expected an activation tensor)");
  }
  return value.tensor;
}

std::optional<std::string> OpCall::model_tensor(const char* name) const {
  const SymValue& value = arg(name);
  if (value.is_none()) return std::nullopt;
  if (!value.is(Kind::model_tensor) || value.transposed) {
    bad_argument(name, "a parameter or buffer of the model");
  }
  return value.name;
}

bool OpCall::is_none(const char* name) const { return arg(name).is_none(); }

int64_t OpCall::i(const char* name) const {
  const SymValue& value = arg(name);
  if (!value.is(Kind::constant) || !value.constant.isInt()) bad_argument(name, "a constant int");
  return value.constant.toInt();
}

double OpCall::f(const char* name) const {
  const auto value = scalar_of(arg(name));
  if (!value) bad_argument(name, "a constant number");
  return *value;
}

bool OpCall::b(const char* name) const {
  const SymValue& value = arg(name);
  if (!value.is(Kind::constant) || !value.constant.isBool()) bad_argument(name, "a constant bool");
  return value.constant.toBool();
}

std::string OpCall::s(const char* name) const {
  const SymValue& value = arg(name);
  if (!value.is(Kind::constant) || !value.constant.isString()) {
    bad_argument(name, "a constant string");
  }
  return value.constant.toStringRef();
}

std::vector<int64_t> OpCall::ints(const char* name) const {
  const SymValue& value = arg(name);
  std::vector<int64_t> result;
  if (value.is(Kind::constant) && value.constant.isInt()) {
    const auto declared = node->schema().arguments()[index_of(name)].N();
    result.assign(declared ? static_cast<size_t>(*declared) : 1, value.constant.toInt());
    return result;
  }
  const auto items = items_of(value);
  if (!items) bad_argument(name, "a constant list of ints");
  for (const SymValue& item : *items) {
    if (!item.is(Kind::constant) || !item.constant.isInt()) {
      bad_argument(name, "a constant list of ints");
    }
    result.push_back(item.constant.toInt());
  }
  return result;
}

SymValue OpCall::emit(ir::Op op, std::vector<ir::ValueId> inputs, ir::Attributes attrs) const {
  const auto outputs = emit_node(interpreter.graph(), op, std::move(inputs), std::move(attrs),
                                 interpreter.scope(frame, node));
  return SymValue::make_tensor(outputs[0]);
}

std::optional<ir::ValueId> OpCall::operand(const SymValue& value) const {
  const bool tensor_like = value.is(Kind::tensor) || value.is(Kind::model_tensor) ||
                           (value.is(Kind::constant) && value.constant.isTensor());
  if (!tensor_like) return std::nullopt;
  return interpreter.materialize(value, c10::TensorType::get(), frame, node);
}

void OpCall::fail(const std::string& problem) const {
  (void)problem;  // the generic op takes over; its errors name the op
  throw NotExpressible{};
}

}  // namespace linquant::frontend::script
