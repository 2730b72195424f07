// LinearQuantizer: coremltools' quantization-aware training flow for LibTorch models.
// prepare() captures and rewrites the model into a GraphModule with fake quantizers,
// step() walks the four milestones, report() lists every quantizer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "linquant/config/linear_quantizer_config.h"
#include "linquant/frontend/module_forward.h"
#include "linquant/ir/graph.h"
#include "linquant/quantizer/report.h"
#include "linquant/runtime/graph_module.h"

namespace torch::nn {
class Module;
class Sequential;
template <typename Contained>
class ModuleHolder;
}  // namespace torch::nn
namespace torch::jit {
struct Module;
}  // namespace torch::jit
namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace linquant {

class LinearQuantizer {
 public:
  // The model is captured right away (errors about unsupported ops surface here); the
  // config is validated and kept.
  LinearQuantizer(torch::nn::Sequential model, LinearQuantizerConfig config = {});
  LinearQuantizer(const torch::jit::Module& model, LinearQuantizerConfig config = {});
  // Any C++ module (`struct Net : torch::nn::Module` with a hand-written forward taking and
  // returning tensors, TORCH_MODULE holders included): captured with LibTorch's tracer when
  // prepare() gets the example inputs, so capture errors surface there (see
  // frontend::capture for what the tracer can and cannot see).
  template <typename Module>
  explicit LinearQuantizer(const std::shared_ptr<Module>& model, LinearQuantizerConfig config = {})
      : LinearQuantizer(model, frontend::forward_of(model), std::move(config)) {}
  template <typename Module>
  explicit LinearQuantizer(const torch::nn::ModuleHolder<Module>& model,
                           LinearQuantizerConfig config = {})
      : LinearQuantizer(model.ptr(), std::move(config)) {}
  // The same for forwards of other signatures: `forward` calls the model on the inputs.
  LinearQuantizer(std::shared_ptr<torch::nn::Module> model, frontend::ModuleForward forward,
                  LinearQuantizerConfig config = {});
  // From an already captured float graph.
  LinearQuantizer(ir::Graph graph, LinearQuantizerConfig config = {});

  // Fuses, places fake quantizers and returns the prepared model, which by default uses the
  // model's own parameter and buffer tensors (an optimizer made on the model keeps training
  // it). inplace = false works on copies and leaves the model untouched. The example inputs
  // run once to check the graph and record shapes. With milestones, every observer and
  // fake quantizer starts switched off. A second call warns and returns the prepared model.
  // With algorithm: learnable, every quantizer's scale and zero point are parameters of the
  // prepared model: make the optimizer after prepare(), from prepared->parameters(), so that
  // it learns them (one made before prepare() does not; step() warns when, 20 steps after the
  // observers stopped, no scale has moved).
  GraphModule prepare(const std::vector<at::Tensor>& example_inputs, bool inplace = true);

  // Milestones [m0, m1, m2, m3]: at call m0 observers go on, at m1 fake quantization goes
  // on, at m2 observers go off, at m3 BatchNorm statistics freeze; several may fire in one
  // call. Without milestones, or before prepare() (with a warning), it does nothing.
  void step();

  // One row per activation quantizer (in graph order) and per weight quantizer. Computing a
  // weight's error does not update its observer.
  Report report() const;

  // The reference-quantized model (reference section 5): BatchNorm folded into its conv or
  // linear, each weight quantizer called once more on the folded weight (an observer still
  // on sees it; unless `inplace`, the prepared model's observers are put back afterwards,
  // as coremltools finalizes a deep copy), weights snapped onto their integer grid, and every
  // activation quantizer frozen into a quantize_dequantize node with the qparams of its
  // observer. Weighted nodes carry the compression metadata the exporters read:
  // `weight_scale` and `weight_zero_point` (tensor names), `weight_axis` (-1 per tensor),
  // `weight_quant_min`, `weight_quant_max`, `weight_bits`. The result is in eval() mode and
  // owns copies of every tensor unless `inplace`, in which case tensors that finalize does
  // not change stay shared with the prepared model. `model` defaults to the prepared one.
  GraphModule finalize(GraphModule model = nullptr, bool inplace = false);

  // Training checkpoints. save_state writes what QAT changes: every parameter and buffer of
  // the prepared model (weights, observer ranges, qparams, observer and fake-quant switches,
  // BatchNorm statistics and freeze flags) and the milestone step count. Add the optimizer
  // and anything else of your loop to the same archive. load_state restores them into a
  // quantizer prepared from the same model and config, and throws linquant::Error when the
  // archive holds another model's state. The prepared model keeps its tensors (an optimizer
  // made on it stays attached); the values are copied in.
  void save_state(torch::serialize::OutputArchive& archive) const;
  void load_state(torch::serialize::InputArchive& archive);

  bool is_prepared() const { return static_cast<bool>(prepared_); }
  GraphModule model() const;
  int64_t step_count() const { return step_count_; }
  const LinearQuantizerConfig& config() const { return config_; }

 private:
  void set_all_observers(bool on);
  void set_all_fake_quants(bool on);

  LinearQuantizerConfig config_;
  ir::Graph float_graph_;
  // C++ modules: the capture prepare() runs on its example inputs.
  std::function<ir::Graph(const std::vector<at::Tensor>&)> capture_on_prepare_;
  GraphModule prepared_{nullptr};
  std::optional<Milestones> milestones_;
  // Learnable quantizers (algorithm: learnable).
  void size_learnable_weight_quantizers();
  void check_learning();
  std::vector<at::Tensor> learning_scales_;
  int64_t learning_since_ = 0;
  bool learning_checked_ = false;
  int64_t step_count_ = 0;
};

}  // namespace linquant
