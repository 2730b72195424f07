// finalize(): from a prepared GraphModule to the reference-quantized one (reference 5).
#include <ATen/ATen.h>

#include <map>
#include <set>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "linquant/runtime/batch_norm_folding.h"

namespace linquant {
namespace {

const char* const kBatchNormAttributes[] = {
    ir::attr::bn_weight,       ir::attr::bn_bias,
    ir::attr::bn_running_mean, ir::attr::bn_running_var,
    ir::attr::bn_eps,          ir::attr::bn_momentum,
    ir::attr::bn_module,       ir::attr::bn_num_batches_tracked};

class Finalizer {
 public:
  Finalizer(ir::Graph& graph, const GraphModule& prepared) : graph_(graph), prepared_(prepared) {}

  void run() {
    for (ir::Node& node : graph_.nodes()) {
      if (node.op == ir::Op::fake_quantize) {
        freeze_activation(node);
      } else if (ir::op_info(node.op).weighted) {
        finalize_weighted(node);
      }
    }
    graph_.quantizers().clear();
  }

 private:
  // Folds BatchNorm, snaps the weight onto its grid and records the compression metadata.
  // A module called by several nodes is finalized once; the other nodes copy its attributes.
  void finalize_weighted(ir::Node& node) {
    if (!node.attrs.has(ir::attr::bn_running_var) && !node.attrs.has(ir::attr::weight_quantizer))
      return;
    const std::string weight_name = node.attrs.s(ir::attr::weight);
    const auto done = finalized_.find(weight_name);
    if (done != finalized_.end()) {
      node.attrs = done->second;
      return;
    }
    at::Tensor weight = graph_.tensor(weight_name).tensor.detach();
    at::Tensor bias = node.attrs.has(ir::attr::bias)
                          ? graph_.tensor(node.attrs.s(ir::attr::bias)).tensor.detach()
                          : at::Tensor();
    const std::string prefix = ir::weight_owner_name(node);
    if (node.attrs.has(ir::attr::bn_running_var)) {
      const runtime::FoldedWeights folded = runtime::fold_batch_norm(graph_, node);
      weight = folded.weight;
      bias = folded.bias;
      for (const char* key : kBatchNormAttributes) node.attrs.erase(key);
    }
    if (node.attrs.has(ir::attr::weight_quantizer)) weight = snap_to_grid(node, weight, prefix);
    // The final tensors take the names of the ones they replace.
    graph_.add_tensor(weight_name, weight.contiguous(), true);
    if (bias.defined()) {
      const std::string bias_name = node.attrs.s(ir::attr::bias, prefix + ".bias");
      graph_.add_tensor(bias_name, bias.contiguous(), true);
      node.attrs.set(ir::attr::bias, bias_name);
    }
    finalized_[weight_name] = node.attrs;
  }

  at::Tensor snap_to_grid(ir::Node& node, const at::Tensor& weight, const std::string& prefix) {
    FakeQuantize fq = prepared_->quantizer(node.attrs.s(ir::attr::weight_quantizer));
    const FakeQuantizeOptions& options = fq->options();
    // torch's convert calls the weight quantizer once more, on the folded weight (a learnable
    // one then takes the observer's qparams as its parameters' values).
    if (fq->is_observer_enabled()) {
      if (fq->is_learnable()) {
        const at::NoGradGuard no_grad;
        fq->forward(weight);
      } else {
        fq->activation_post_process->forward(weight);
      }
    }
    auto [scale, zero_point] = fq->calculate_qparams();
    // A learnable quantizer divides by its scale; the weights snap with that arithmetic.
    const at::Tensor snapped =
        fq->is_learnable()
            ? fake_quantize_by_division(weight, scale, zero_point, options.ch_axis,
                                        options.range.quant_min, options.range.quant_max)
            : fake_quantize(weight, scale, zero_point, options.ch_axis, options.range.quant_min,
                            options.range.quant_max);
    graph_.add_tensor(prefix + ".weight_scale", scale, false);
    graph_.add_tensor(prefix + ".weight_zero_point", zero_point, false);
    node.attrs.set(ir::attr::weight_scale, prefix + ".weight_scale");
    node.attrs.set(ir::attr::weight_zero_point, prefix + ".weight_zero_point");
    node.attrs.set(ir::attr::weight_axis, options.ch_axis);
    node.attrs.set(ir::attr::weight_quant_min, options.range.quant_min);
    node.attrs.set(ir::attr::weight_quant_max, options.range.quant_max);
    node.attrs.set(ir::attr::weight_bits, int64_t{options.range.n_bits()});
    node.attrs.erase(ir::attr::weight_quantizer);
    return snapped;
  }

  // The quantizer's current qparams (from its observer's range) become constants.
  void freeze_activation(ir::Node& node) {
    const std::string quantizer_name = node.attrs.s(ir::attr::quantizer);
    FakeQuantize fq = prepared_->quantizer(quantizer_name);
    const FakeQuantizeOptions& options = fq->options();
    QParam qparam = options.fixed_qparams.value_or(QParam{});
    if (!options.fixed_qparams) {
      auto [scale, zero_point] = fq->calculate_qparams();
      qparam = {scale.item<float>(), zero_point.item<int32_t>()};
    }
    node.op = ir::Op::quantize_dequantize;
    node.attrs.erase(ir::attr::quantizer);
    node.attrs.set(ir::attr::scale, static_cast<double>(qparam.scale));
    node.attrs.set(ir::attr::zero_point, int64_t{qparam.zero_point});
    node.attrs.set(ir::attr::quant_min, options.range.quant_min);
    node.attrs.set(ir::attr::quant_max, options.range.quant_max);
    node.attrs.set(ir::attr::activation_quantizer, quantizer_name);  // provenance, for reports
    if (fq->is_learnable()) node.attrs.set(ir::attr::divides_by_scale, true);
  }

  ir::Graph& graph_;
  const GraphModule& prepared_;
  std::map<std::string, ir::Attributes> finalized_;  // by original weight tensor name
};

// Drops tensors no node uses any more (unfolded BatchNorm statistics); copies the rest
// unless `share`. Tensors under a float_module's name belong to its opaque call.
void keep_used_tensors(ir::Graph& graph, bool share) {
  std::set<std::string> used;
  std::vector<std::string> float_prefixes;
  for (const ir::Node& node : graph.nodes()) {
    for (const auto& [key, value] : node.attrs.all()) {
      if (const auto* name = std::get_if<std::string>(&value)) used.insert(*name);
    }
    if (node.op == ir::Op::float_module)
      float_prefixes.push_back(node.attrs.s(ir::attr::module) + ".");
  }
  std::vector<std::pair<std::string, ir::GraphTensor>> entries(graph.tensors().begin(), graph.tensors().end());
  for (const auto& [name, entry] : entries) {
    bool keep = used.count(name) != 0;
    for (const std::string& prefix : float_prefixes) keep = keep || name.rfind(prefix, 0) == 0;
    if (!keep) {
      graph.remove_tensor(name);
    } else if (!share) {
      at::Tensor copy = entry.tensor.detach().clone();
      if (entry.tensor.requires_grad()) copy.set_requires_grad(true);
      graph.add_tensor(name, copy, entry.is_parameter);
    }
  }
}

}  // namespace

GraphModule LinearQuantizer::finalize(GraphModule model, bool inplace) {
  if (!model) {
    if (!prepared_) throw Error("finalize(): the model is not prepared yet: call prepare() first");
    model = prepared_;
  }
  const at::NoGradGuard no_grad;
  ir::Graph graph = model->graph();
  // Calling the weight quantizers updates observers that are still on. Like coremltools,
  // which finalizes a deep copy unless inplace, leave the prepared model as it was.
  std::vector<std::pair<at::Tensor, at::Tensor>> buffers_before;
  if (!inplace) {
    for (const auto& item : model->named_buffers())
      buffers_before.emplace_back(item.value(), item.value().clone());
  }
  Finalizer(graph, model).run();
  keep_used_tensors(graph, inplace);
  for (auto& [buffer, before] : buffers_before) {
    if (buffer.sizes() != before.sizes()) buffer.resize_(before.sizes());
    buffer.copy_(before);
  }
  GraphModule finalized(std::move(graph));
  finalized->eval();
  return finalized;
}

}  // namespace linquant
