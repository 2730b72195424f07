// The LinearQuantizer flow: capture -> passes -> GraphModule, then the milestone schedule.
#include "linquant/quantizer/linear_quantizer.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/script.h>

#include <set>

#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "linquant/frontend/capture.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"

namespace linquant {
namespace {

frontend::CaptureOptions capture_options(const LinearQuantizerConfig& config) {
  return {config.non_traceable_module_names};
}

// coremltools logs names in module_name_configs that match no submodule; so do we, since
// a typo there silently quantizes the module with the default config.
// A few warnings name the entries; a config with thousands of stale entries gets a count,
// not thousands of lines.
void warn_each(const std::vector<std::string>& messages, const std::string& summary) {
  constexpr size_t kNamed = 10;
  for (size_t i = 0; i < messages.size() && i < kNamed; ++i) warn(messages[i]);
  if (messages.size() > kNamed) {
    warn("... and " + std::to_string(messages.size() - kNamed) + " more " + summary);
  }
}

void warn_about_unknown_names(const ir::Graph& graph, const LinearQuantizerConfig& config) {
  std::set<std::string> modules;
  for (const ir::Node& node : graph.nodes()) {
    std::string name = node.scope.module_name;
    while (!name.empty()) {
      modules.insert(name);
      const auto dot = name.rfind('.');
      name = dot == std::string::npos ? "" : name.substr(0, dot);
    }
  }
  std::vector<std::string> messages;
  for (const auto& [name, unused] : config.module_name_configs) {
    if (!modules.count(name)) {
      messages.push_back("module_name_configs[\"" + name +
                         "\"] matches no submodule of the model; it has no effect");
    }
  }
  warn_each(messages, "module_name_configs entries match no submodule of the model");
  messages.clear();
  for (const std::string& type : passes::unmatched_type_configs(graph, config)) {
    messages.push_back("module_type_configs[\"" + type +
                       "\"] matches no module type or function of the model (type names are "
                       "case-sensitive, e.g. Conv2d); it has no effect");
  }
  warn_each(messages, "module_type_configs entries match nothing in the model");
}

// Copies every tensor of the graph (prepare with inplace = false).
void detach_tensors(ir::Graph& graph) {
  for (const auto& [name, entry] : graph.tensors()) {
    at::Tensor clone = entry.tensor.detach().clone();
    if (entry.tensor.requires_grad()) clone.set_requires_grad(true);
    graph.add_tensor(name, clone, entry.is_parameter);
  }
}

}  // namespace

LinearQuantizer::LinearQuantizer(torch::nn::Sequential model, LinearQuantizerConfig config)
    : LinearQuantizer(frontend::capture(std::move(model), capture_options(config)), config) {}

LinearQuantizer::LinearQuantizer(const torch::jit::Module& model, LinearQuantizerConfig config)
    : LinearQuantizer(frontend::capture(model, capture_options(config)), config) {}

LinearQuantizer::LinearQuantizer(std::shared_ptr<torch::nn::Module> model,
                                 frontend::ModuleForward forward, LinearQuantizerConfig config)
    : LinearQuantizer(ir::Graph(), std::move(config)) {
  if (!model) throw Error("LinearQuantizer got a null module");
  if (!forward) throw Error("LinearQuantizer got an empty forward function");
  capture_on_prepare_ = [model = std::move(model), forward = std::move(forward),
                         options =
                             capture_options(config_)](const std::vector<at::Tensor>& inputs) {
    return frontend::capture(model, forward, inputs, options);
  };
}

LinearQuantizer::LinearQuantizer(ir::Graph graph, LinearQuantizerConfig config)
    : config_(std::move(config)), float_graph_(std::move(graph)) {
  config_.validate();
  milestones_ = config_.milestones();
}

namespace {

// The passes add fake_quantize nodes (whose outputs have their inputs' shapes and dtypes) and
// otherwise only rewire and remove nodes, so the float run's recording also describes the
// prepared graph: no second run of the model (half of prepare()'s time on a large model).
void copy_shapes_to_quantizer_outputs(ir::Graph& graph) {
  for (const ir::Node& node : graph.nodes()) {
    if (node.op != ir::Op::fake_quantize) continue;
    const ir::Value& in = graph.value(node.inputs.at(0));
    ir::Value& out = graph.value(node.outputs.at(0));
    out.shape = in.shape;
    out.dtype = in.dtype;
  }
}

}  // namespace

GraphModule LinearQuantizer::prepare(const std::vector<at::Tensor>& example_inputs, bool inplace) {
  if (prepared_) {
    warn("prepare() was already called: returning the prepared model unchanged");
    return prepared_;
  }
  if (capture_on_prepare_) {
    float_graph_ = capture_on_prepare_(example_inputs);
    capture_on_prepare_ = nullptr;
  }
  ir::Graph graph = float_graph_;
  if (!inplace) detach_tensors(graph);
  warn_about_unknown_names(graph, config_);
  {
    // Placement needs the dtypes (integer tensors from sizes, indices and masks carry no
    // activations to quantize): one run of the float graph records them.
    GraphModule float_module(graph);
    float_module->eval();
    float_module->record_shapes(example_inputs);
    graph = float_module->graph();
  }
  passes::prepare_graph(graph, config_);
  copy_shapes_to_quantizer_outputs(graph);
  GraphModule module(std::move(graph));
  module->train();
  prepared_ = module;
  size_learnable_weight_quantizers();
  if (milestones_) {
    set_all_observers(false);
    set_all_fake_quants(false);
  }
  return prepared_;
}

void LinearQuantizer::step() {
  if (!prepared_) {
    warn("step() called before prepare(): nothing to do");
    return;
  }
  check_learning();
  if (!milestones_) return;
  const Milestones& m = *milestones_;
  if (step_count_ == m[0]) set_all_observers(true);
  if (step_count_ == m[1]) set_all_fake_quants(true);
  if (step_count_ == m[2]) set_all_observers(false);
  if (step_count_ == m[3]) prepared_->freeze_bn_stats();
  ++step_count_;
}

void LinearQuantizer::size_learnable_weight_quantizers() {
  const ir::Graph& graph = prepared_->graph();
  for (const ir::Node& node : graph.nodes()) {
    if (!node.attrs.has(ir::attr::weight_quantizer) || !node.attrs.has(ir::attr::weight)) continue;
    FakeQuantize fq = prepared_->quantizer(node.attrs.s(ir::attr::weight_quantizer));
    if (!fq->is_learnable() || !fq->options().per_channel()) continue;
    const at::Tensor& weight = graph.tensor(node.attrs.s(ir::attr::weight)).tensor;
    fq->set_channels(weight.size(fq->options().ch_axis));
  }
}

// An optimizer made before prepare() does not hold the learnable quantizers' parameters:
// they then never move once the observers stop overwriting them. Seen as: every learnable
// scale unchanged for kLearningWindow steps of fake quantization without observers.
void LinearQuantizer::check_learning() {
  constexpr int64_t kLearningWindow = 20;
  if (learning_checked_) return;
  std::vector<at::Tensor> scales;
  for (auto& [name, fq] : prepared_->quantizers()) {
    if (!fq->is_learnable() || fq->is_observer_enabled() || !fq->is_fake_quant_enabled()) {
      continue;
    }
    scales.push_back(fq->scale.detach());
  }
  if (scales.empty()) {
    learning_scales_.clear();
    return;
  }
  if (learning_scales_.size() != scales.size()) {
    learning_scales_.clear();
    for (const at::Tensor& s : scales) learning_scales_.push_back(s.clone());
    learning_since_ = step_count_;
    return;
  }
  if (step_count_ - learning_since_ < kLearningWindow) return;
  learning_checked_ = true;
  for (size_t k = 0; k < scales.size(); ++k) {
    if (!at::equal(scales[k], learning_scales_[k])) return;
  }
  warn("learnable quantizers: no scale has changed in " + std::to_string(kLearningWindow) +
       " steps of fake quantization with the observers off; is the optimizer missing the "
       "quantizer parameters? Make it after prepare() from the prepared model's parameters() "
       "(an optimizer made before prepare() holds only the model's own weights)");
}

GraphModule LinearQuantizer::model() const {
  if (!prepared_) throw Error("the model is not prepared yet: call prepare() first");
  return prepared_;
}

void LinearQuantizer::set_all_observers(bool on) {
  for (auto& [name, fq] : prepared_->quantizers()) fq->enable_observer(on);
}

void LinearQuantizer::set_all_fake_quants(bool on) {
  for (auto& [name, fq] : prepared_->quantizers()) fq->enable_fake_quant(on);
}

}  // namespace linquant
