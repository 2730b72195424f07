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

  // Arithmetic on sizes in traced models (sizes become 0-dim tensors there) stays symbolic;
  // a shape that needs it reports it.
  bool reads_activation = false;
  bool reads_runtime_value = false;
  for (const torch::jit::Value* input : node->inputs()) {
    const SymValue& value = lookup(frame, input);
    reads_activation |= value.is(Kind::tensor);
    reads_runtime_value |= value.is(Kind::size) || value.is(Kind::unknown);
  }
  if (!reads_activation && reads_runtime_value) {
    for (const torch::jit::Value* output : node->outputs()) {
      bind(frame, output, SymValue::make_unknown(kind + " of sizes"));
    }
    return;
  }

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

  const auto& table = tensor_op_rules();
  auto rule = table.find(base);
  if (rule == table.end()) rule = table.find(kind);
  if (rule == table.end() || node->outputs().size() != 1) {
    fail(frame, node, kind + " (linquant has no IR op for it)");
  }
  const OpCall call(*this, node, frame);
  SymValue result = rule->second(call);
  bind(frame, node->output(), result);
  if (in_place) bind(frame, node->input(0), result);  // later reads see the new value
}

}  // namespace linquant::frontend::script
