// GraphModule structure: the module tree mirroring qualified names, registration of the
// model's tensors, the quantizers and the BatchNorm freeze flags, and the public entry points
// that hand a RunContext to the interpreter.
#include "linquant/runtime/graph_module.h"

#include <ATen/ATen.h>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "run_context.h"

namespace linquant {
namespace {

// "layer1.0.conv1.weight" -> {"layer1.0.conv1", "weight"}; "scale" -> {"", "scale"}.
std::pair<std::string, std::string> split_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

void check_qualified_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' ||
      name.find("..") != std::string::npos) {
    throw Error("GraphModule: '" + name + "' is not a qualified name (a.b.c)");
  }
}

}  // namespace

GraphModuleImpl::GraphModuleImpl(ir::Graph graph)
    : torch::nn::Module("GraphModule"), graph_(std::move(graph)) {
  ir::verify(graph_);
  for (const ir::Node& node : graph_.nodes()) {
    const ir::Scope& scope = node.scope;
    if (!scope.module_name.empty() && !scope.module_type.empty() && !scope.functional) {
      module_types_.emplace(scope.module_name, scope.module_type);
    }
  }
  register_tensors();
  register_quantizers();
  register_freeze_flags();
  check_runnable();
}

torch::nn::Module& GraphModuleImpl::holder(const std::string& module_name) {
  if (module_name.empty()) return *this;
  const auto found = holders_.find(module_name);
  if (found != holders_.end()) return *found->second;
  check_qualified_name(module_name);
  const auto [parent, leaf] = split_name(module_name);
  const auto type = module_types_.find(module_name);
  auto module = std::make_shared<torch::nn::Module>(
      type == module_types_.end() ? std::string("Module") : type->second);
  holder(parent).register_module(leaf, module);
  holders_.emplace(module_name, module);
  return *module;
}

void GraphModuleImpl::register_tensors() {
  for (const auto& [name, entry] : graph_.tensors()) {
    check_qualified_name(name);
    const auto [module_name, leaf] = split_name(name);
    torch::nn::Module& owner = holder(module_name);
    // The graph's own handle: the TensorImpl stays the model's, so optimizers built on the
    // model and torch::load (which assigns in place) act on the same tensor.
    if (entry.is_parameter) {
      owner.register_parameter(leaf, entry.tensor, entry.tensor.requires_grad());
    } else {
      owner.register_buffer(leaf, entry.tensor);
    }
  }
}

void GraphModuleImpl::register_quantizers() {
  for (const auto& [name, spec] : graph_.quantizers()) {
    check_qualified_name(name);
    const auto [module_name, leaf] = split_name(name);
    FakeQuantize quantizer(spec.options);
    holder(module_name).register_module(leaf, quantizer.ptr());
    quantizers_.emplace(name, quantizer);
  }
  std::map<std::string, int> uses;
  for (const ir::Node& node : graph_.nodes()) {
    if (node.op == ir::Op::fake_quantize) ++uses[node.attrs.s(ir::attr::quantizer)];
  }
  for (const auto& [name, count] : uses) {
    if (count > 1 && quantizers_.count(name)) shared_quantizers_.push_back(quantizers_.at(name));
  }
}

void GraphModuleImpl::register_freeze_flags() {
  std::map<std::string, at::Tensor> by_module;
  for (const ir::Node& node : graph_.nodes()) {
    if (!runtime::has_fused_batch_norm(node)) continue;
    // The flag lives on the module holding the conv weight, where torch's ConvBn keeps it; a
    // module called by several nodes has one flag.
    std::string module_name = node.scope.module_name;
    if (node.attrs.has(ir::attr::weight)) {
      const std::string weight_owner = split_name(node.attrs.s(ir::attr::weight)).first;
      if (!weight_owner.empty()) module_name = weight_owner;
    }
    auto it = by_module.find(module_name);
    if (it == by_module.end()) {
      at::Tensor flag = at::zeros({1}, at::kByte);
      holder(module_name).register_buffer("freeze_bn", flag);
      it = by_module.emplace(module_name, flag).first;
    }
    freeze_bn_.emplace(node.name, it->second);
  }
}

void GraphModuleImpl::check_runnable() {
  for (const ir::Node& node : graph_.nodes()) {
    if (node.op != ir::Op::torch_op) continue;
    try {
      operations_.emplace(&node, runtime::resolve_operator(node));
    } catch (const Error& e) {
      throw Error("node '" + node.name + "' (" + node.attrs.s(ir::attr::schema, "torch_op") +
                  "): " + e.what());
    }
  }
  const runtime::RunContext context{graph_,        quantizers_, freeze_bn_, operations_,
                                    is_training(), false,       nullptr};
  for (const ir::Node& node : graph_.nodes()) runtime::check_node(node, context);
}

std::vector<at::Tensor> GraphModuleImpl::run(const std::vector<at::Tensor>& inputs,
                                             bool record_only, const std::vector<bool>* keep,
                                             std::vector<c10::IValue>* kept) {
  const runtime::RunContext context{graph_,
                                    quantizers_,
                                    freeze_bn_,
                                    operations_,
                                    is_training(),
                                    record_only,
                                    batch_stats_reducer_ ? &batch_stats_reducer_ : nullptr};
  if (!record_only) {
    if (shared_update_ == SharedObserverUpdate::per_call) return runtime::run_graph(inputs, context);
    // Ends the shared passes also when a node throws.
    struct SharedPass {
      std::vector<FakeQuantize>& quantizers;
      explicit SharedPass(std::vector<FakeQuantize>& q) : quantizers(q) {
        for (auto& fq : quantizers) fq->begin_shared_pass();
      }
      ~SharedPass() {
        for (auto& fq : quantizers) fq->end_shared_pass();
      }
    } pass(shared_quantizers_);
    return runtime::run_graph(inputs, context);
  }
  std::vector<runtime::RecordedTensor> shapes;
  std::vector<at::Tensor> outputs = runtime::run_graph(inputs, context, &shapes, keep, kept);
  for (size_t id = 0; id < shapes.size(); ++id) {
    ir::Value& value = graph_.value(static_cast<ir::ValueId>(id));
    if (value.type != ir::ValueType::tensor) continue;
    value.shape = std::move(shapes[id].shape);
    value.dtype = shapes[id].dtype;
  }
  return outputs;
}

at::Tensor GraphModuleImpl::forward(const at::Tensor& input) {
  if (graph_.inputs().size() != 1 || graph_.outputs().size() != 1) {
    throw Error("GraphModule::forward(Tensor) needs a graph with one input and one output; "
                "this graph has " + std::to_string(graph_.inputs().size()) + " and " +
                std::to_string(graph_.outputs().size()) + ": use forward(std::vector<Tensor>)");
  }
  return run({input}, false).front();
}

std::vector<at::Tensor> GraphModuleImpl::forward(const std::vector<at::Tensor>& inputs) {
  return run(inputs, false);
}

FakeQuantize GraphModuleImpl::quantizer(const std::string& name) const {
  const auto it = quantizers_.find(name);
  if (it == quantizers_.end()) {
    throw Error("GraphModule has no quantizer named '" + name + "' (" +
                std::to_string(quantizers_.size()) + " quantizers)");
  }
  return it->second;
}

std::vector<std::pair<std::string, FakeQuantize>> GraphModuleImpl::quantizers() const {
  return {quantizers_.begin(), quantizers_.end()};
}

void GraphModuleImpl::freeze_bn_stats() {
  for (auto& [node_name, flag] : freeze_bn_) flag.fill_(1);
}

bool GraphModuleImpl::is_bn_frozen(const std::string& node_name) const {
  const auto it = freeze_bn_.find(node_name);
  if (it != freeze_bn_.end()) return it->second.item<uint8_t>() != 0;
  if (graph_.find_node(node_name)) {
    throw Error("GraphModule: node '" + node_name + "' has no fused BatchNorm");
  }
  throw Error("GraphModule: the graph has no node named '" + node_name + "'");
}

void GraphModuleImpl::record_shapes(const std::vector<at::Tensor>& example_inputs) {
  const at::NoGradGuard no_grad;
  run(example_inputs, true);
}

std::vector<c10::IValue> GraphModuleImpl::record_values(
    const std::vector<at::Tensor>& example_inputs, const std::vector<bool>& keep) {
  const at::NoGradGuard no_grad;
  std::vector<c10::IValue> kept;
  run(example_inputs, true, &keep, &kept);
  return kept;
}

}  // namespace linquant
