// What the interpreter and the op kernels share while running one graph: the model tensors,
// the quantizer modules, the BatchNorm freeze flags and the mode; plus the kernel entry
// points, one family per file.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/stack.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "linquant/ir/graph.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/runtime/graph_module.h"

namespace linquant::runtime {

struct RunContext {
  const ir::Graph& graph;
  const std::map<std::string, FakeQuantize>& quantizers;
  const std::map<std::string, at::Tensor>& freeze_bn;  // by node name
  // The LibTorch operator of every torch_op node, resolved once by GraphModule.
  const std::unordered_map<const ir::Node*, torch::jit::Operation>& operations;
  bool training = false;
  // Shape recording: quantizers, BatchNorm statistics and dropout are left alone so that the
  // run changes no state.
  bool record_only = false;
  // Data-parallel BatchNorm statistics (GraphModuleImpl::set_batch_stats_reducer); null: local.
  const BatchStatsReducer* batch_stats_reducer = nullptr;

  // The model tensor named by attribute `key` of `node`; throws linquant::Error naming both.
  const at::Tensor& tensor(const ir::Node& node, const std::string& key) const;
  // Undefined when the attribute is absent (optional bias, affine=False BatchNorm).
  at::Tensor optional_tensor(const ir::Node& node, const std::string& key) const;
  // The quantizer module named by attribute `key` of `node`.
  FakeQuantize quantizer(const ir::Node& node, const std::string& key) const;
};

// Checks, before any run, that the tensors, quantizers and callables a node names exist.
void check_node(const ir::Node& node, const RunContext& context);

// Runs one node; throws linquant::Error naming the node for anything it cannot run.
std::vector<c10::IValue> run_node(const ir::Node& node, std::vector<c10::IValue> inputs,
                                  const RunContext& context);

// Runs the whole graph on tensor inputs; returns its tensor outputs. With `shapes`, also
// stores the shape and dtype of every tensor value by id.
struct RecordedTensor {
  std::vector<int64_t> shape;
  std::optional<c10::ScalarType> dtype;
};
// With `keep`, also stores the value of every value id marked in it into `kept`.
std::vector<at::Tensor> run_graph(const std::vector<at::Tensor>& inputs,
                                  const RunContext& context,
                                  std::vector<RecordedTensor>* shapes = nullptr,
                                  const std::vector<bool>* keep = nullptr,
                                  std::vector<c10::IValue>* kept = nullptr);

// The generic and structural ops: torch_op (the resolved LibTorch operator), constant,
// model_tensor, list and unpack: value_ops.cpp.
std::vector<c10::IValue> run_value_op(const ir::Node& node, std::vector<c10::IValue> inputs,
                                      const RunContext& context);
// The operator a torch_op node names ("aten::squeeze.dim"); throws linquant::Error when
// LibTorch has none by that name.
torch::jit::Operation resolve_operator(const ir::Node& node);

// Stateless ATen ops (activations, pooling, shape, elementwise, layer_norm,
// quantize_dequantize): op_kernels.cpp.
at::Tensor run_stateless_op(const ir::Node& node, const std::vector<at::Tensor>& inputs,
                            const RunContext& context);

// conv, conv_transpose and linear, with an optional weight quantizer and optional fused
// BatchNorm: weighted_ops.cpp and conv_bn.cpp.
at::Tensor run_weighted(const ir::Node& node, const at::Tensor& x, const RunContext& context);
at::Tensor apply_weighted(const ir::Node& node, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& bias);
at::Tensor quantize_weight(const ir::Node& node, const at::Tensor& weight,
                           const RunContext& context);
// A weighted node carrying the bn_* attributes of a fused BatchNorm.
bool has_fused_batch_norm(const ir::Node& node);
// With then_quantize: that activation quantizer's forward on the result (fused with a frozen
// BatchNorm where divide_frozen_batch_norm_and_quantize applies).
at::Tensor run_conv_bn(const ir::Node& node, const at::Tensor& x, const RunContext& context,
                       FakeQuantize* then_quantize = nullptr);

// BatchNorm as torch::nn::BatchNorm*d runs it: batch statistics update the running ones
// (and count batches) when `use_batch_stats`; batch_norm.cpp.
struct BatchNormState {
  at::Tensor weight;  // undefined without affine parameters
  at::Tensor bias;
  at::Tensor running_mean;
  at::Tensor running_var;
  at::Tensor num_batches_tracked;  // undefined when not tracked
  double eps = 1e-5;
  // Negative: torch's momentum=None, a cumulative average over num_batches_tracked.
  double momentum = 0.1;
};
// Counts the batch in num_batches_tracked when `use_batch_stats`, and returns the momentum
// at::batch_norm takes for it (torch's momentum=None: one over the batches counted).
double count_batch(const BatchNormState& state, bool use_batch_stats);
// With a reducer and batch statistics: sync_batch_norm.
at::Tensor batch_norm(const at::Tensor& x, const BatchNormState& state, bool use_batch_stats,
                      const BatchStatsReducer* reducer = nullptr);
// Training-mode BatchNorm with the statistics of the whole data-parallel batch
// (sync_batch_norm.cpp); `momentum` as at::batch_norm's.
at::Tensor sync_batch_norm(const at::Tensor& x, const BatchNormState& state, double momentum,
                           const BatchStatsReducer& reduce);
// The state a node names in its attributes: "weight", "running_mean", "eps", ... after
// `prefix` ("" for a batch_norm node, "bn_" for BatchNorm fused into conv/linear).
BatchNormState batch_norm_state(const ir::Node& node, const RunContext& context,
                                const std::string& prefix);
// A standalone batch_norm node.
at::Tensor run_batch_norm(const ir::Node& node, const at::Tensor& x, const RunContext& context);

}  // namespace linquant::runtime
