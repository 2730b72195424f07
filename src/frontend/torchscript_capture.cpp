// Capture of TorchScript modules: graph inputs from forward's tensor arguments, the walk, and
// graph outputs from what forward returns (tuples become several outputs).
#include <torch/csrc/jit/api/module.h>

#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"
#include "script_interpreter.h"

namespace linquant::frontend {
namespace {

using script::SymValue;

// "x.1" -> "x": TorchScript numbers debug names to keep them unique.
std::string input_name(const torch::jit::Value* value, size_t index) {
  std::string name = value->debugName();
  const size_t dot = name.find('.');
  if (dot != std::string::npos) name.erase(dot);
  return name.empty() ? "input_" + std::to_string(index) : name;
}

void collect_outputs(const SymValue& value, std::vector<ir::ValueId>& outputs) {
  if (value.is(SymValue::Kind::sequence)) {
    for (const SymValue& item : value.items) collect_outputs(item, outputs);
  } else if (value.is(SymValue::Kind::tensor)) {
    outputs.push_back(value.tensor);
  } else if (value.is(SymValue::Kind::model_tensor)) {
    throw Error("cannot capture a model whose forward returns the model tensor '" + value.name +
                "' itself: graph outputs must be computed tensors");
  } else {
    throw Error("cannot capture a model whose forward returns " + script::describe(value) +
                ": graph outputs must be tensors, or tuples and lists of tensors");
  }
}

}  // namespace

ir::Graph capture(const torch::jit::Module& model, const CaptureOptions& options) {
  const auto forward = model.find_method("forward");
  if (!forward) throw Error("cannot capture a TorchScript module without a forward method");
  ir::Graph graph;
  std::vector<SymValue> inputs;
  const auto jit_inputs = forward->graph()->inputs();
  for (size_t k = 1; k < jit_inputs.size(); ++k) {  // input 0 is the module itself
    if (!script::is_tensor_type(jit_inputs[k])) {
      throw Error("cannot capture forward argument '" + jit_inputs[k]->debugName() + "' of type " +
                  jit_inputs[k]->type()->str() + ": linquant graphs take tensor inputs only");
    }
    inputs.push_back(SymValue::make_tensor(graph.add_input(input_name(jit_inputs[k], k - 1))));
  }
  script::Interpreter interpreter(graph, options);
  std::vector<ir::ValueId> outputs;
  for (const SymValue& result : interpreter.run_root(model, inputs)) {
    collect_outputs(result, outputs);
  }
  graph.set_outputs(outputs);
  script::remove_dead_values(graph);
  ir::verify(graph);
  return graph;
}

}  // namespace linquant::frontend
