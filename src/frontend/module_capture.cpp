// Capture of C++ modules: trace into a TorchScript module (module_trace.cpp), capture that,
// then give each op computing with a module's tensors that module's name and type, since the
// tracer records no module boundaries.
#include <torch/nn/module.h>

#include <map>
#include <set>
#include <string>

#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"
#include "linquant/ir/attribute_keys.h"
#include "module_trace.h"

namespace linquant::frontend {
namespace {

// "layer1.0.conv1.weight" -> "layer1.0.conv1".
std::string owner_of(const std::string& tensor_name) {
  const size_t dot = tensor_name.rfind('.');
  return dot == std::string::npos ? "" : tensor_name.substr(0, dot);
}

// The one module whose tensors the node's weight, bias and statistics are, or nothing when
// it has none or several modules' tensors.
std::optional<std::string> owning_module(const ir::Node& node) {
  std::set<std::string> owners;
  for (const char* key :
       {ir::attr::weight, ir::attr::bias, ir::attr::running_mean, ir::attr::running_var}) {
    if (node.attrs.has(key)) owners.insert(owner_of(node.attrs.s(key)));
  }
  if (owners.size() != 1 || owners.begin()->empty()) return std::nullopt;
  return *owners.begin();
}

void attribute_to_modules(ir::Graph& graph, const torch::nn::Module& model) {
  std::map<std::string, std::string> types;  // qualified name -> normalized type
  for (const auto& item : model.named_modules()) {
    types[item.key()] = normalize_module_type(item.value()->name());
  }
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const std::optional<std::string> owner = owning_module(graph.nodes()[i]);
    if (!owner || !types.count(*owner)) continue;
    ir::Scope& scope = graph.nodes()[i].scope;
    scope.module_name = *owner;
    scope.module_type = types.at(*owner);
    scope.functional = false;
    graph.rename_node(i, *owner);  // "b1.conv"; a module called twice also gives "b1.conv_1"
  }
}

}  // namespace

std::string module_type_name(const torch::nn::Module& module) {
  return normalize_module_type(module.name());
}

std::vector<at::Tensor> forward_outputs(const c10::IValue& result, const std::string& module_type) {
  std::vector<at::Tensor> tensors;
  if (result.isTensor()) {
    tensors.push_back(result.toTensor());
  } else if (result.isTuple() || result.isList()) {
    const std::vector<c10::IValue> items =
        result.isTuple() ? result.toTupleRef().elements().vec() : result.toListRef().vec();
    for (const c10::IValue& item : items) {
      for (at::Tensor& tensor : forward_outputs(item, module_type)) tensors.push_back(tensor);
    }
  } else {
    throw Error("the forward of " + module_type + " returns a " + result.tagKind() +
                ": linquant captures forwards that return tensors, or tuples and lists of "
                "tensors");
  }
  return tensors;
}

ir::Graph capture(const std::shared_ptr<torch::nn::Module>& model, const ModuleForward& forward,
                  const std::vector<at::Tensor>& example_inputs, const CaptureOptions& options) {
  if (!model) throw Error("cannot capture a null module");
  if (!options.non_traceable_module_names.empty()) {
    throw Error(
        "non_traceable_module_names is not supported for C++ modules (the tracer runs "
        "through every submodule): remove it from the config");
  }
  const torch::jit::Module script = trace_module(model, forward, example_inputs);
  ir::Graph graph = capture(script, options);
  attribute_to_modules(graph, *model);
  return graph;
}

}  // namespace linquant::frontend
