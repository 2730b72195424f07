// Capture of torch::nn::Sequential: children in order, nested Sequentials flattened into one
// graph under qualified names ("3.1"), non-traceable children kept as float calls.
#include <torch/nn/modules/container/sequential.h>

#include <set>

#include "capture_error.h"
#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"
#include "linquant/ir/attribute_keys.h"
#include "node_emit.h"
#include "sequential_layers.h"

namespace linquant::frontend {
namespace {

class SequentialCapture {
 public:
  SequentialCapture(ir::Graph& graph, const CaptureOptions& options)
      : graph_(graph),
        non_traceable_(options.non_traceable_module_names.begin(),
                       options.non_traceable_module_names.end()) {}

  ir::ValueId children(torch::nn::SequentialImpl& sequential, const std::string& prefix,
                       ir::ValueId input) {
    const auto named = sequential.named_children();
    if (named.size() != sequential.size()) {
      throw Error("Sequential '" + prefix + "' registers modules it does not run; " +
                  "linquant captures only plain Sequentials");
    }
    ir::ValueId value = input;
    size_t index = 0;
    for (torch::nn::AnyModule& child : sequential) {
      const std::string name = qualified(prefix, named[index].key());
      value = one_child(child, name, value);
      ++index;
    }
    return value;
  }

 private:
  static std::string qualified(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }

  ir::ValueId one_child(torch::nn::AnyModule& child, const std::string& name,
                        ir::ValueId input) {
    const std::shared_ptr<torch::nn::Module> module = child.ptr();
    ir::Scope scope;
    scope.module_name = name;
    scope.module_type = normalize_module_type(module->name());
    if (non_traceable_.count(name)) return float_call(child, *module, scope, input);
    if (auto nested = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(module)) {
      return children(*nested, name, input);
    }
    add_tensors(*module, name);
    if (auto output = capture_sequential_layer(graph_, *module, input, scope)) return *output;
    throw Error("cannot capture Sequential child '" + name + "' of type " + scope.module_type +
                " (C++ class " + module->name() +
                "): linquant has no capture rule for this module type. " +
                float_call_advice(name) + ".");
  }

  // Parameters and buffers under their qualified names, as the model's own tensor objects.
  void add_tensors(const torch::nn::Module& module, const std::string& name) {
    for (const auto& item : module.named_parameters(/*recurse=*/true)) {
      graph_.add_tensor(qualified(name, item.key()), item.value(), true);
    }
    for (const auto& item : module.named_buffers(/*recurse=*/true)) {
      graph_.add_tensor(qualified(name, item.key()), item.value(), false);
    }
  }

  ir::ValueId float_call(torch::nn::AnyModule& child, const torch::nn::Module& module,
                         const ir::Scope& scope, ir::ValueId input) {
    add_tensors(module, scope.module_name);
    // AnyModule copies share the module, so the callable runs the user's own instance.
    graph_.add_float_module(
        scope.module_name,
        [any = child](const std::vector<at::Tensor>& inputs) mutable -> std::vector<at::Tensor> {
          return {any.forward(inputs.at(0))};
        });
    ir::Attributes attrs;
    attrs.set(ir::attr::module, scope.module_name);
    return emit_node(graph_, ir::Op::float_module, {input}, std::move(attrs), scope)[0];
  }

  ir::Graph& graph_;
  std::set<std::string> non_traceable_;
};

}  // namespace

ir::Graph capture(torch::nn::Sequential model, const CaptureOptions& options) {
  if (model.is_empty()) throw Error("cannot capture an empty torch::nn::Sequential holder");
  ir::Graph graph;
  const ir::ValueId input = graph.add_input("input");
  SequentialCapture walker(graph, options);
  graph.set_outputs({walker.children(*model, "", input)});
  ir::verify(graph);
  return graph;
}

}  // namespace linquant::frontend
