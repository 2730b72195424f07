// GraphModule: a torch::nn::Module that runs a linquant graph (float or prepared) with ATen
// ops under autograd. The model's own tensors, the fake quantizers and the BatchNorm freeze
// flags are registered under their qualified names, so parameters(), named_buffers(), any
// optimizer made on the original model, and torch::save / torch::load all see one state.
#pragma once

#include <ATen/core/stack.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "linquant/ir/graph.h"
#include "linquant/quant/fake_quantize.h"

namespace linquant {

// How a quantizer shared by several nodes (a pool/flatten/cat group) observes: once per
// forward from the union of its inputs (linquant's default; coremltools.md Appendix C item 5),
// or once per call as PyTorch and coremltools do (for bit-for-bit comparisons with them).
enum class SharedObserverUpdate { once_per_forward, per_call };

// Data-parallel BatchNorm (torch's SyncBatchNorm semantics): called with per-channel sums of
// one BatchNorm on this rank (float64), which it must replace in place with their sums over
// all ranks, so that every rank normalizes with the statistics of the whole batch.
using BatchStatsReducer = std::function<void(at::Tensor& sums)>;

class GraphModuleImpl : public torch::nn::Module {
 public:
  // Verifies the graph, then registers its tensors (the same TensorImpls, not copies), one
  // FakeQuantize per entry of graph.quantizers(), and a `freeze_bn` flag for every weighted
  // node with a fused BatchNorm. Throws linquant::Error if the graph cannot be run.
  explicit GraphModuleImpl(ir::Graph graph);

  // One input and one output; throws linquant::Error for graphs of another arity.
  at::Tensor forward(const at::Tensor& input);
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs);

  const ir::Graph& graph() const { return graph_; }

  // Throws linquant::Error if the graph has no quantizer of that name.
  FakeQuantize quantizer(const std::string& name) const;
  // In name order.
  std::vector<std::pair<std::string, FakeQuantize>> quantizers() const;

  // Fused BatchNorm from now on normalizes with (and stops updating) running statistics,
  // also in training mode: coremltools' milestone 3. Saved with the module state.
  void freeze_bn_stats();

  void set_shared_observer_update(SharedObserverUpdate mode) { shared_update_ = mode; }
  SharedObserverUpdate shared_observer_update() const { return shared_update_; }
  // For a weighted node with fused BatchNorm; throws linquant::Error for any other node.
  bool is_bn_frozen(const std::string& node_name) const;
  // Training-mode BatchNorm (fused into conv/linear or standalone) from now on takes its
  // batch statistics through `reducer` (distributed::DataParallel installs an all-reduce);
  // an empty function goes back to each process's own batch.
  void set_batch_stats_reducer(BatchStatsReducer reducer) {
    batch_stats_reducer_ = std::move(reducer);
  }

  // Runs the graph once without gradients and without touching module state (observers,
  // BatchNorm statistics, flags) and stores every tensor value's shape and dtype in
  // graph().value(id).
  // Callables of float_module nodes are opaque and do run once.
  void record_shapes(const std::vector<at::Tensor>& example_inputs);
  // record_shapes, also returning the values (by value id) of the values marked in `keep`:
  // what an exporter needs of the values that do not depend on the input data.
  std::vector<c10::IValue> record_values(const std::vector<at::Tensor>& example_inputs,
                                         const std::vector<bool>& keep);

 private:
  // The module standing for a qualified module name, created on first use ("" is this one).
  torch::nn::Module& holder(const std::string& module_name);
  void register_tensors();
  void register_quantizers();
  void register_freeze_flags();
  void check_runnable();
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs, bool record_only,
                              const std::vector<bool>* keep = nullptr,
                              std::vector<c10::IValue>* kept = nullptr);

  ir::Graph graph_;
  // Qualified module name -> the plain module standing for it.
  std::map<std::string, std::shared_ptr<torch::nn::Module>> holders_;
  std::map<std::string, std::string> module_types_;
  std::map<std::string, FakeQuantize> quantizers_;
  // Node name -> the freeze_bn buffer of its module (nodes of one module share it).
  std::map<std::string, at::Tensor> freeze_bn_;
  // The LibTorch operator of each torch_op node.
  std::unordered_map<const ir::Node*, torch::jit::Operation> operations_;
  // Quantizers used by more than one fake_quantize node.
  std::vector<FakeQuantize> shared_quantizers_;
  SharedObserverUpdate shared_update_ = SharedObserverUpdate::once_per_forward;
  BatchStatsReducer batch_stats_reducer_;
};
TORCH_MODULE(GraphModule);

}  // namespace linquant
