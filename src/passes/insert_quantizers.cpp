// Fake-quantizer placement, following PyTorch FX prepare with coremltools' backend config:
// a quantized op observes each tensor input (reusing a quantizer already on that value) and
// gets an output quantizer that is its own, shared with its input (pools, flatten, cat,
// identity, mean) or of fixed range (sigmoid-like modules). Everything downstream of an
// output quantizer reads the fake-quantized value.
#include <map>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {
namespace {

using ir::Op;
using ir::OutputQuantization;

FakeQuantizeOptions activation_options(const ModuleLinearQuantizerConfig& config) {
  FakeQuantizeOptions options;
  options.range = quant_range(config.activation_dtype);
  options.scheme = config.quantization_scheme;
  options.observer = config.activation_observer;
  options.algorithm = config.algorithm;
  return options;
}

FakeQuantizeOptions weight_options(const ModuleLinearQuantizerConfig& config, Op op) {
  FakeQuantizeOptions options;
  options.range = quant_range(config.weight_dtype);
  options.scheme = config.quantization_scheme;
  options.observer = config.weight_observer;
  options.algorithm = config.algorithm;
  // Always the output-channel axis: dim 1 of a transposed conv's weight.
  if (config.weight_per_channel) options.ch_axis = op == Op::conv_transpose ? 1 : 0;
  return options;
}

class Placer {
 public:
  Placer(ir::Graph& graph, const QConfigTable& qconfigs) : graph_(graph), qconfigs_(qconfigs) {}

  void run() {
    for (size_t n = 0; n < graph_.nodes().size(); ++n) {
      if (graph_.nodes()[n].op == Op::fake_quantize) continue;
      n = place(n);
    }
  }

 private:
  // The config that governs a node: a fused activation follows the root of its block.
  const OptionalModuleConfig* config_of(const ir::Node& node) const {
    const std::string& key =
        node.attrs.has(ir::attr::fused_with) ? node.attrs.s(ir::attr::fused_with) : node.name;
    const auto it = qconfigs_.find(key);
    return it == qconfigs_.end() ? nullptr : &it->second;
  }

  // False when a fused activation follows: the block's output is the activation's.
  bool ends_block(size_t n) const {
    const ir::Node& node = graph_.nodes()[n];
    for (size_t user : graph_.consumers(node.outputs[0])) {
      const ir::Node& next = graph_.nodes()[user];
      if (next.attrs.has(ir::attr::fused_with) && next.attrs.s(ir::attr::fused_with) == node.name)
        return false;
    }
    return true;
  }

  std::string new_activation_quantizer(FakeQuantizeOptions options) {
    const std::string name = "activation_post_process_" + std::to_string(counter_++);
    graph_.add_quantizer(name, ir::QuantizerSpec{options, false});
    return name;
  }

  // Inserts `fake_quantize(value)` right after the value's producer; returns its node index.
  size_t insert_fake_quantize(ir::ValueId value, const std::string& quantizer) {
    const auto producer = graph_.producer(value);
    size_t at = producer ? *producer + 1 : 0;
    // Keep the quantizers of graph inputs in input order.
    while (!producer && at < graph_.nodes().size() && graph_.nodes()[at].op == Op::fake_quantize &&
           graph_.producer(graph_.nodes()[at].inputs[0]) == std::nullopt) {
      ++at;
    }
    ir::Node fq;
    fq.op = Op::fake_quantize;
    fq.name = graph_.unique_node_name(quantizer);
    fq.inputs = {value};
    fq.attrs.set(ir::attr::quantizer, quantizer);
    if (const ir::Node* p = producer_of(graph_, value)) fq.scope = p->scope;
    graph_.insert_node(at, fq);
    return at;
  }

  bool is_module_tensor_of(const ir::Node& node, ir::ValueId input) const {
    const ir::Node* p = producer_of(graph_, input);
    return p && p->op == Op::model_tensor && !node.scope.functional &&
           p->attrs.s(ir::attr::tensor).rfind(node.scope.module_name + ".", 0) == 0;
  }

  // The quantizer a fake_quantize node output belongs to, or "" for other values.
  std::string quantizer_of(ir::ValueId value) const {
    const ir::Node* p = producer_of(graph_, value);
    return p && p->op == Op::fake_quantize ? p->attrs.s(ir::attr::quantizer) : "";
  }

  // Every node using quantizer `from` now uses `to`.
  void merge_quantizers(const std::string& to, const std::string& from) {
    if (to == from) return;
    for (size_t n : nodes_using_quantizer(graph_, from))
      graph_.nodes()[n].attrs.set(ir::attr::quantizer, to);
    graph_.remove_quantizer(from);
  }

  // Returns the index of the last node handled (the node itself or its output quantizer).
  size_t place(size_t n) {
    const OptionalModuleConfig* config = config_of(graph_.nodes()[n]);
    if (!config || !config->has_value()) return n;
    const ModuleLinearQuantizerConfig& qc = **config;

    if (is_weighted(graph_.nodes()[n]) && qc.weight_dtype != WeightDtype::float32) {
      ir::Node& node = graph_.nodes()[n];
      const std::string name = ir::weight_owner_name(node) + ".weight_fake_quant";
      graph_.add_quantizer(name, ir::QuantizerSpec{weight_options(qc, node.op), true});
      node.attrs.set(ir::attr::weight_quantizer, name);
    }
    if (qc.activation_dtype != ActivationDtype::quint8) return n;

    // Inputs (not for an activation fused to the op before it).
    if (!graph_.nodes()[n].attrs.has(ir::attr::fused_with)) {
      for (size_t k = 0; k < graph_.nodes()[n].inputs.size(); ++k) {
        const ir::ValueId input = graph_.nodes()[n].inputs[k];
        // Integer and boolean tensors (sizes, indices, masks) carry no activations, and a
        // leaf module's own tensors (PReLU's weight) are not its inputs.
        if (!graph_.is_float_tensor(input) || !quantizer_of(input).empty()) continue;
        if (is_module_tensor_of(graph_.nodes()[n], input)) continue;
        const auto existing = observed_.find(input);
        if (existing != observed_.end()) {
          graph_.nodes()[n].inputs[k] = existing->second;
          continue;
        }
        const size_t at = insert_fake_quantize(input, new_activation_quantizer(activation_options(qc)));
        if (at <= n) ++n;
        const ir::ValueId quantized = graph_.nodes()[at].outputs[0];
        observed_[input] = quantized;
        graph_.nodes()[n].inputs[k] = quantized;
      }
    }
    if (!ends_block(n)) return n;

    // Output.
    const ir::Node& node = graph_.nodes()[n];
    if (!graph_.is_float_tensor(node.outputs[0])) return n;
    const bool fused = node.attrs.has(ir::attr::fused_with);
    const OutputQuantization rule = fused ? OutputQuantization::own_observer : output_rule(node);
    std::string quantizer;
    switch (rule) {
      case OutputQuantization::not_quantized: return n;
      case OutputQuantization::own_observer:
        quantizer = new_activation_quantizer(activation_options(qc));
        break;
      case OutputQuantization::fixed_qparams: {
        FakeQuantizeOptions options = activation_options(qc);
        options.scheme = QuantizationScheme::affine;
        options.fixed_qparams = fixed_output_qparams(node.op);
        quantizer = new_activation_quantizer(options);
        break;
      }
      case OutputQuantization::share_with_input: {
        // FX numbers the shared output quantizer too; skipping its number keeps every
        // quantizer named like the module coremltools creates first for the group.
        ++counter_;
        quantizer = quantizer_of(node.inputs[0]);
        if (quantizer.empty()) return n;  // input stayed float (cannot happen for quantized ops)
        if (node.op == Op::cat) {
          for (size_t k = 1; k < node.inputs.size(); ++k) merge_quantizers(quantizer, quantizer_of(node.inputs[k]));
        }
        break;
      }
    }
    const ir::ValueId output = node.outputs[0];
    const size_t at = insert_fake_quantize(output, quantizer);
    const ir::ValueId quantized = graph_.nodes()[at].outputs[0];
    graph_.replace_uses(output, quantized, at + 1);
    observed_[output] = quantized;
    return at;
  }

  ir::Graph& graph_;
  const QConfigTable& qconfigs_;
  std::map<ir::ValueId, ir::ValueId> observed_;  // float value -> its fake-quantized version
  int counter_ = 0;
};

}  // namespace

void insert_quantizers(ir::Graph& graph, const QConfigTable& qconfigs) {
  Placer(graph, qconfigs).run();
}

}  // namespace linquant::passes
