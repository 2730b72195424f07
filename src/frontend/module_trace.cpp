// Tracing C++ modules; see module_trace.h.
#include "module_trace.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/nn/module.h>

#include <sstream>
#include <string>
#include <utility>

#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

// A TorchScript module per C++ module, registering the very same tensors (so the tracer,
// which binds tensors by identity, reads parameters and buffers as attributes of `self`
// rather than as constants) and named by the normalized C++ type.
torch::jit::Module mirror(const torch::nn::Module& module,
                          const std::shared_ptr<torch::jit::CompilationUnit>& unit) {
  const c10::QualifiedName type_name =
      unit->mangle(c10::QualifiedName("__torch__." + normalize_module_type(module.name())));
  torch::jit::Module script(type_name, unit, /*shouldMangle=*/true);
  for (const auto& parameter : module.named_parameters(/*recurse=*/false)) {
    if (parameter.value().defined())
      script.register_parameter(parameter.key(), parameter.value(), false);
  }
  for (const auto& buffer : module.named_buffers(/*recurse=*/false)) {
    if (buffer.value().defined()) script.register_buffer(buffer.key(), buffer.value());
  }
  for (const auto& child : module.named_children()) {
    script.register_module(child.key(), mirror(*child.value(), unit));
  }
  return script;
}

// Every module in eval() mode while it lives; each module's own mode back afterwards.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(const std::shared_ptr<torch::nn::Module>& model)
      : modules_(model->modules()) {
    for (const auto& module : modules_) modes_.push_back(module->is_training());
    model->eval();
  }
  ~EvalModeGuard() {
    // modules() lists parents before children, and train() recurses: set parents first.
    for (size_t i = 0; i < modules_.size(); ++i) modules_[i]->train(modes_[i]);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  std::vector<std::shared_ptr<torch::nn::Module>> modules_;
  std::vector<bool> modes_;
};

std::shared_ptr<torch::jit::Graph> trace_once(torch::jit::Module& script,
                                              const ModuleForward& forward,
                                              const std::vector<at::Tensor>& inputs,
                                              const std::string& module_type) {
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  auto traced = [&](torch::jit::Stack arguments) -> torch::jit::Stack {
    std::vector<at::Tensor> tensors;
    for (const c10::IValue& argument : arguments) tensors.push_back(argument.toTensor());
    const std::vector<at::Tensor> outputs = forward(tensors);
    if (outputs.empty()) throw Error("the forward of " + module_type + " returns no tensor");
    if (outputs.size() == 1) return {outputs[0]};
    // One result, as TorchScript methods have: several tensors become a tuple.
    return {c10::ivalue::Tuple::create(std::vector<c10::IValue>(outputs.begin(), outputs.end()))};
  };
  try {
    auto result = torch::jit::tracer::trace(
        std::move(stack), traced, [](const at::Tensor&) { return std::string(); },
        /*strict=*/true, /*force_outplace=*/false, &script);
    return result.first->graph;
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& error) {
    throw Error("cannot trace the forward of " + module_type + ": " +
                error.what_without_backtrace());
  }
}

// What two traces of one model must share: every op in order, with its constant values.
std::vector<std::string> structure(const torch::jit::Graph& graph) {
  std::vector<std::string> ops;
  for (const torch::jit::Node* node : graph.nodes()) {
    std::ostringstream op;
    op << node->kind().toQualString();
    if (node->kind() == c10::prim::Constant && node->hasAttributes()) {
      if (const auto value = torch::jit::toIValue(node->output())) op << " " << *value;
    }
    ops.push_back(op.str());
  }
  return ops;
}

// The inputs of the second trace: one more sample, and floating-point values negated.
std::vector<at::Tensor> other_inputs(const std::vector<at::Tensor>& inputs) {
  std::vector<at::Tensor> other;
  for (const at::Tensor& input : inputs) {
    at::Tensor changed = input.is_floating_point() ? input.neg() : input.clone();
    if (input.dim() >= 1 && input.size(0) >= 1) {
      changed = at::cat({changed, changed.narrow(0, 0, 1)});
    }
    other.push_back(changed);
  }
  return other;
}

void check_same_structure(const torch::jit::Graph& first, const torch::jit::Graph& second,
                          const std::string& module_type) {
  const std::vector<std::string> a = structure(first), b = structure(second);
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  if (k == a.size() && k == b.size()) return;
  const std::string left = k < a.size() ? a[k] : "the end";
  const std::string right = k < b.size() ? b[k] : "the end";
  throw Error("cannot capture " + module_type +
              ": its forward records different ops for another batch (op " + std::to_string(k + 1) +
              ": " + left + " vs " + right +
              "). The tracer records one path through forward: control flow on tensor values, "
              "and sizes read as integers (x.size(0) becomes a constant), cannot be captured. "
              "Use sizes-free calls (x.flatten(1), view with -1) and move data-dependent "
              "branches out of forward");
}

}  // namespace

torch::jit::Module trace_module(const std::shared_ptr<torch::nn::Module>& model,
                                const ModuleForward& forward,
                                const std::vector<at::Tensor>& example_inputs) {
  const std::string module_type = normalize_module_type(model->name());
  if (example_inputs.empty()) {
    throw Error("cannot trace " + module_type + " without example inputs");
  }
  for (const at::Tensor& input : example_inputs) {
    if (!input.defined()) throw Error("cannot trace " + module_type + " on an undefined tensor");
  }
  const EvalModeGuard eval_mode(model);
  torch::jit::Module script = mirror(*model, std::make_shared<torch::jit::CompilationUnit>());
  const auto graph = trace_once(script, forward, example_inputs, module_type);
  const auto second = trace_once(script, forward, other_inputs(example_inputs), module_type);
  check_same_structure(*graph, *second, module_type);

  // Inputs named as a Sequential's: "input", or "input_0", "input_1", ... for several.
  for (size_t k = 1; k < graph->inputs().size(); ++k) {
    graph->inputs()[k]->setDebugName(example_inputs.size() == 1 ? std::string("input")
                                                                : "input_" + std::to_string(k - 1));
  }
  auto unit = script._ivalue()->compilation_unit();
  torch::jit::Function* method =
      unit->create_function(c10::QualifiedName(*script.type()->name(), "forward"), graph);
  script.type()->addMethod(method);
  return script;
}

}  // namespace linquant::frontend
