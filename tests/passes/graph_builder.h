// Builds small IR graphs the way the frontends would capture them, for pass tests, and
// prints a placement in one line so expectations read like the reference tables.
#pragma once

#include <ATen/ATen.h>

#include <sstream>
#include <string>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::testing {

class GraphBuilder {
 public:
  ir::ValueId input(const std::string& name = "x") { return graph_.add_input(name); }

  ir::ValueId conv(ir::ValueId x, const std::string& module, const std::string& type = "Conv2d",
                   ir::Op op = ir::Op::conv) {
    ir::Node node = leaf(op, {x}, module, type);
    node.attrs.set("weight", tensor(module + ".weight", {4, 4, 3, 3}, true));
    node.attrs.set("bias", tensor(module + ".bias", {4}, true));
    node.attrs.set("stride", std::vector<int64_t>{1, 1});
    node.attrs.set("padding", std::vector<int64_t>{1, 1});
    node.attrs.set("dilation", std::vector<int64_t>{1, 1});
    node.attrs.set("groups", int64_t{1});
    node.attrs.set("spatial_dims", int64_t{2});
    if (op == ir::Op::conv_transpose) node.attrs.set("output_padding", std::vector<int64_t>{0, 0});
    return add(node);
  }

  ir::ValueId linear(ir::ValueId x, const std::string& module) {
    ir::Node node = leaf(ir::Op::linear, {x}, module, "Linear");
    node.attrs.set("weight", tensor(module + ".weight", {4, 4}, true));
    node.attrs.set("bias", tensor(module + ".bias", {4}, true));
    return add(node);
  }

  // An Embedding module reading integer ids (the value's recorded dtype says so).
  ir::ValueId embedding(ir::ValueId ids, const std::string& module) {
    graph_.value(ids).dtype = at::kLong;
    ir::Node node = leaf(ir::Op::embedding, {ids}, module, "Embedding");
    node.attrs.set("weight", tensor(module + ".weight", {10, 4}, true));
    node.attrs.set("padding_idx", int64_t{-1});
    node.attrs.set("scale_grad_by_freq", false);
    node.attrs.set("sparse", false);
    return add(node);
  }

  ir::ValueId bn(ir::ValueId x, const std::string& module, const std::string& type = "BatchNorm2d") {
    ir::Node node = leaf(ir::Op::batch_norm, {x}, module, type);
    node.attrs.set("weight", tensor(module + ".weight", {4}, true));
    node.attrs.set("bias", tensor(module + ".bias", {4}, true));
    node.attrs.set("running_mean", tensor(module + ".running_mean", {4}, false));
    node.attrs.set("running_var", tensor(module + ".running_var", {4}, false, /*positive=*/true));
    node.attrs.set("eps", 1e-5);
    node.attrs.set("momentum", 0.1);
    return add(node);
  }

  // A leaf module call (module non-empty) or a functional call in the root scope.
  ir::ValueId op(ir::Op op, std::vector<ir::ValueId> inputs, const std::string& module = "",
                 const std::string& type = "", ir::Attributes attrs = {}) {
    ir::Node node = module.empty() ? functional(op, std::move(inputs)) : leaf(op, std::move(inputs), module, type);
    for (const auto& [key, value] : attrs.all()) node.attrs.set(key, value);
    fill_required(node);
    return add(node);
  }

  ir::Graph finish(std::vector<ir::ValueId> outputs) {
    graph_.set_outputs(std::move(outputs));
    ir::verify(graph_);
    return graph_;
  }

 private:
  static ir::Node leaf(ir::Op op, std::vector<ir::ValueId> inputs, const std::string& module,
                       const std::string& type) {
    ir::Node node;
    node.op = op;
    node.name = module;
    node.inputs = std::move(inputs);
    node.scope = {module, type, false, ""};
    return node;
  }
  static ir::Node functional(ir::Op op, std::vector<ir::ValueId> inputs) {
    ir::Node node;
    node.op = op;
    node.inputs = std::move(inputs);
    node.scope = {"", "Net", true, ""};
    return node;
  }
  static void fill_required(ir::Node& node) {
    auto set_default = [&](const char* key, ir::AttributeValue value) {
      if (!node.attrs.has(key)) node.attrs.set(key, std::move(value));
    };
    switch (node.op) {
      case ir::Op::max_pool:
        set_default("kernel_size", std::vector<int64_t>{2, 2});
        set_default("stride", std::vector<int64_t>{2, 2});
        set_default("padding", std::vector<int64_t>{0, 0});
        set_default("dilation", std::vector<int64_t>{1, 1});
        set_default("ceil_mode", false);
        set_default("spatial_dims", int64_t{2});
        break;
      case ir::Op::adaptive_avg_pool: set_default("output_size", std::vector<int64_t>{1, 1}); break;
      case ir::Op::flatten:
        set_default("start_dim", int64_t{1});
        set_default("end_dim", int64_t{-1});
        break;
      case ir::Op::cat: set_default("dim", int64_t{1}); break;
      case ir::Op::softmax:
      case ir::Op::log_softmax: set_default("dim", int64_t{1}); break;
      case ir::Op::leaky_relu: set_default("negative_slope", 0.01); break;
      case ir::Op::permute: set_default("dims", std::vector<int64_t>{0, 2, 3, 1}); break;
      case ir::Op::reshape: set_default("shape", std::vector<int64_t>{0, -1}); break;
      case ir::Op::mean:
        set_default("dims", std::vector<int64_t>{2, 3});
        set_default("keepdim", false);
        break;
      case ir::Op::layer_norm:
        set_default("normalized_shape", std::vector<int64_t>{4});
        set_default("eps", 1e-5);
        break;
      case ir::Op::dropout: set_default("p", 0.5); break;
      default: break;
    }
  }
  std::string tensor(const std::string& name, std::vector<int64_t> shape, bool parameter,
                     bool positive = false) {
    graph_.add_tensor(name, positive ? at::rand(shape) + 0.5 : at::randn(shape), parameter);
    return name;
  }
  ir::ValueId add(ir::Node node) {
    if (!node.name.empty()) node.name = graph_.unique_node_name(node.name);
    const size_t index = graph_.add_node(std::move(node));
    return graph_.nodes()[index].outputs[0];
  }

  ir::Graph graph_;
};

// "fq:app_0:s conv[w:s0] relu fq:app_1:a" — quantizer name, scheme (s/a/f for fixed),
// weight quantizer scheme and axis; fused activations are written "+relu".
inline std::string placement(const ir::Graph& graph) {
  std::ostringstream text;
  bool first = true;
  for (const ir::Node& node : graph.nodes()) {
    text << (first ? "" : " ");
    first = false;
    auto scheme = [&](const std::string& quantizer) {
      const auto& options = graph.quantizers().at(quantizer).options;
      if (options.fixed_qparams) return std::string("f");
      return std::string(options.scheme == QuantizationScheme::symmetric ? "s" : "a");
    };
    if (node.op == ir::Op::fake_quantize) {
      const std::string& q = node.attrs.s("quantizer");
      text << "fq:" << q.substr(q.rfind('_') + 1) << ":" << scheme(q);
      continue;
    }
    text << (node.attrs.has("fused_with") ? "+" : "") << ir::to_string(node.op);
    if (node.attrs.has("bn_running_var")) text << "+bn";
    if (node.attrs.has("weight_quantizer")) {
      const auto& w = graph.quantizers().at(node.attrs.s("weight_quantizer")).options;
      text << "[w:" << scheme(node.attrs.s("weight_quantizer")) << w.ch_axis << "]";
    }
  }
  return text.str();
}

}  // namespace linquant::testing
