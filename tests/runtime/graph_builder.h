// Small helpers for building IR graphs by hand in the runtime tests: typed attribute values,
// nodes with a module scope, and weighted nodes that use a torch::nn module's own tensors.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <utility>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::testing {

using ir::Op;
using ir::ValueId;

inline ir::AttributeValue I(int64_t v) { return v; }
inline ir::AttributeValue F(double v) { return v; }
inline ir::AttributeValue B(bool v) { return v; }
inline ir::AttributeValue S(const std::string& v) { return v; }
inline ir::AttributeValue L(std::vector<int64_t> v) { return v; }

using AttrList = std::vector<std::pair<std::string, ir::AttributeValue>>;

// Appends a node and returns the index of the node.
inline size_t add_node(ir::Graph& g, Op op, std::vector<ValueId> inputs, const AttrList& attrs = {},
                       const std::string& module = "", const std::string& type = "",
                       const std::string& name = "", int num_outputs = 1) {
  ir::Node node;
  node.op = op;
  node.name = name;
  node.inputs = std::move(inputs);
  for (const auto& [key, value] : attrs) node.attrs.set(key, value);
  node.scope.module_name = module;
  node.scope.module_type = type;
  return g.add_node(std::move(node), num_outputs);
}

// Appends a one-output node and returns its output value.
inline ValueId add(ir::Graph& g, Op op, std::vector<ValueId> inputs, const AttrList& attrs = {},
                   const std::string& module = "", const std::string& type = "",
                   const std::string& name = "") {
  const size_t n = add_node(g, op, std::move(inputs), attrs, module, type, name);
  return g.nodes()[n].outputs[0];
}

inline ir::Node& last_node(ir::Graph& g) { return g.nodes().back(); }

// A conv node reading `module`.weight / .bias, registered as the module's own tensors.
inline ValueId add_conv(ir::Graph& g, ValueId x, const std::string& module,
                        const at::Tensor& weight, const at::Tensor& bias,
                        std::vector<int64_t> stride, std::vector<int64_t> padding,
                        int64_t groups = 1, bool transposed = false) {
  g.add_tensor(module + ".weight", weight, true);
  const std::vector<int64_t> ones(stride.size(), 1);
  AttrList attrs = {{"weight", S(module + ".weight")}, {"stride", L(stride)},
                    {"padding", L(padding)},           {"dilation", L(ones)},
                    {"groups", I(groups)},             {"spatial_dims", I(int64_t(stride.size()))}};
  if (transposed) attrs.push_back({"output_padding", L(std::vector<int64_t>(stride.size(), 0))});
  if (bias.defined()) {
    g.add_tensor(module + ".bias", bias, true);
    attrs.push_back({"bias", S(module + ".bias")});
  }
  const std::string type = (transposed ? "ConvTranspose" : "Conv") +
                           std::to_string(stride.size()) + "d";
  return add(g, transposed ? Op::conv_transpose : Op::conv, {x}, attrs, module, type, module);
}

inline ValueId add_conv(ir::Graph& g, ValueId x, const std::string& module,
                        const torch::nn::Conv2d& conv, std::vector<int64_t> stride = {1, 1},
                        std::vector<int64_t> padding = {0, 0}) {
  return add_conv(g, x, module, conv->weight, conv->bias, std::move(stride), std::move(padding));
}

inline ValueId add_linear(ir::Graph& g, ValueId x, const std::string& module,
                          const at::Tensor& weight, const at::Tensor& bias) {
  g.add_tensor(module + ".weight", weight, true);
  AttrList attrs = {{"weight", S(module + ".weight")}};
  if (bias.defined()) {
    g.add_tensor(module + ".bias", bias, true);
    attrs.push_back({"bias", S(module + ".bias")});
  }
  return add(g, Op::linear, {x}, attrs, module, "Linear", module);
}

// The tensors of a BatchNorm module under `module`: parameters and the three buffers.
inline void add_bn_tensors(ir::Graph& g, const std::string& module, const at::Tensor& weight,
                           const at::Tensor& bias, const at::Tensor& running_mean,
                           const at::Tensor& running_var, const at::Tensor& num_batches) {
  if (weight.defined()) g.add_tensor(module + ".weight", weight, true);
  if (bias.defined()) g.add_tensor(module + ".bias", bias, true);
  g.add_tensor(module + ".running_mean", running_mean, false);
  g.add_tensor(module + ".running_var", running_var, false);
  g.add_tensor(module + ".num_batches_tracked", num_batches, false);
}

// A standalone batch_norm node on a BatchNorm module's own tensors.
inline ValueId add_batch_norm(ir::Graph& g, ValueId x, const std::string& module,
                              const torch::nn::BatchNorm2d& bn) {
  add_bn_tensors(g, module, bn->weight, bn->bias, bn->running_mean, bn->running_var,
                 bn->num_batches_tracked);
  return add(g, Op::batch_norm, {x},
             {{"weight", S(module + ".weight")},
              {"bias", S(module + ".bias")},
              {"running_mean", S(module + ".running_mean")},
              {"running_var", S(module + ".running_var")},
              {"num_batches_tracked", S(module + ".num_batches_tracked")},
              {"eps", F(bn->options.eps())},
              {"momentum", F(bn->options.momentum().value())}},
             module, "BatchNorm2d", module);
}

// Fuses a BatchNorm (tensors already in the graph under `bn_module`) into the weighted node
// named `node_name`, with the attributes the fusion pass writes.
inline void fuse_bn(ir::Graph& g, const std::string& node_name, const std::string& bn_module,
                    double eps, double momentum, bool affine = true) {
  ir::Node& node = g.nodes()[*g.find_node(node_name)];
  if (affine) {
    node.attrs.set("bn_weight", bn_module + ".weight");
    node.attrs.set("bn_bias", bn_module + ".bias");
  }
  node.attrs.set("bn_running_mean", bn_module + ".running_mean");
  node.attrs.set("bn_running_var", bn_module + ".running_var");
  node.attrs.set("bn_num_batches_tracked", bn_module + ".num_batches_tracked");
  node.attrs.set("bn_eps", eps);
  node.attrs.set("bn_momentum", momentum);
  node.attrs.set("bn_module", bn_module);
}

// A leaf copy of a tensor: same values, its own storage, and requires_grad as asked.
inline at::Tensor copy_of(const at::Tensor& t, bool requires_grad) {
  return t.detach().clone().set_requires_grad(requires_grad);
}

}  // namespace linquant::testing
