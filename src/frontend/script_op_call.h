// One TorchScript tensor op being turned into an IR node: its arguments by schema name, as
// the typed values the IR attributes need, with errors that name the argument.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "script_interpreter.h"

namespace linquant::frontend::script {

class OpCall {
 public:
  // Thrown by fail(): the rule cannot express this call as a linquant op, so capture falls
  // back to the generic torch_op.
  struct NotExpressible {};

  OpCall(Interpreter& interpreter, torch::jit::Node* node, Frame& frame);

  const std::string& kind() const { return kind_; }  // "aten::conv2d"
  bool has(const char* name) const;                   // the schema has this argument
  const SymValue& arg(const char* name) const;
  const SymValue& input(size_t index) const;

  // An activation (an IR value); fails for anything else.
  ir::ValueId tensor(const char* name) const;
  // The op's first argument as an activation, whatever the overload calls it ("input" for
  // aten::dropout, "self" for aten::dropout_).
  ir::ValueId first_tensor() const;
  // A model tensor's qualified name, nullopt for None; fails for anything else.
  std::optional<std::string> model_tensor(const char* name) const;
  bool is_none(const char* name) const;
  int64_t i(const char* name) const;
  double f(const char* name) const;  // also accepts ints, bools and one-element tensors
  bool b(const char* name) const;
  std::string s(const char* name) const;
  // An int list; a single int is repeated to the list size the schema declares (int[2]).
  std::vector<int64_t> ints(const char* name) const;

  // A tensor operand: activations as they are, model tensors and constant tensors as
  // model_tensor / constant nodes; nullopt for anything else.
  std::optional<ir::ValueId> operand(const SymValue& value) const;

  SymValue emit(ir::Op op, std::vector<ir::ValueId> inputs, ir::Attributes attrs = {}) const;
  [[noreturn]] void fail(const std::string& problem) const;

  Interpreter& interpreter;
  torch::jit::Node* node;
  Frame& frame;

 private:
  size_t index_of(const char* name) const;
  [[noreturn]] void bad_argument(const char* name, const std::string& expected) const;

  std::string kind_;
};

// A number known now: constants and one-element constant tensors (traced Python scalars).
std::optional<double> scalar_of(const SymValue& value);

// How one op kind ("aten::conv2d", in-place variants included) becomes IR; nullopt (or
// OpCall::fail) when this call cannot be expressed as a linquant op.
using TensorOpRule = std::function<std::optional<SymValue>(const OpCall&)>;
const std::unordered_map<std::string, TensorOpRule>& tensor_op_rules();

}  // namespace linquant::frontend::script
