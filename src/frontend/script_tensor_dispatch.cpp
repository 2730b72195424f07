// Dispatch of tensor ops to their rules (script_tensor_ops.cpp), with what is common to all of
// them: in-place variants, arithmetic on sizes, and BatchNorm's batch counter.
#include "script_op_call.h"

namespace linquant::frontend::script {
namespace {

using Kind = SymValue::Kind;

// "aten::relu_" mutates its input and returns it: "aten::relu" plus rebinding.
bool is_in_place(const std::string& kind) {
  const std::string name = kind.substr(kind.find("::") + 2);
  return name.size() > 1 && name.back() == '_' && name.compare(0, 2, "__") != 0;
}

}  // namespace

void Interpreter::run_tensor_op(torch::jit::Node* node, Frame& frame) {
  const std::string kind = node->kind().toQualString();
  const bool in_place = is_in_place(kind);
  const std::string base = in_place ? kind.substr(0, kind.size() - 1) : kind;

  if (in_place && lookup(frame, node->input(0)).is(Kind::model_tensor)) {
    const SymValue target = lookup(frame, node->input(0));
    // BatchNorm counts its batches in place; the runtime's batch norm owns that count.
    const std::string counter = "num_batches_tracked";
    const bool counts_batches = base == "aten::add" && target.name.size() >= counter.size() &&
                                target.name.compare(target.name.size() - counter.size(),
                                                    counter.size(), counter) == 0;
    if (!counts_batches) fail(frame, node, kind + " modifying model tensor '" + target.name + "'");
    bind(frame, node->output(), target);
    return;
  }

  // linquant's own op when a rule expresses the call; otherwise (no rule, or arguments the
  // rule cannot express) the generic LibTorch operator.
  const auto& table = tensor_op_rules();
  auto rule = table.find(base);
  if (rule == table.end()) rule = table.find(kind);
  if (rule != table.end() && node->outputs().size() == 1) {
    try {
      const OpCall call(*this, node, frame);
      if (const auto result = rule->second(call)) {
        bind(frame, node->output(), *result);
        if (in_place) bind(frame, node->input(0), *result);  // later reads see the new value
        return;
      }
    } catch (const OpCall::NotExpressible&) {
      // falls through to the generic op
    }
  }
  run_generic(node, frame);
}

}  // namespace linquant::frontend::script
