// Cross-check of LinearQuantizer's prepare()/step() pipeline against PyTorch's own QAT:
// torch_reference/make_qat_reference.py prepares the same models with prepare_qat_fx under
// the quantization config coremltools builds for the affine scheme, runs 20 SGD steps through
// all four milestones and records everything; this test captures the same TorchScript model,
// prepares it with linquant, runs the same steps on the same data and compares the
// quantizer placement, and per step the loss, the output, every parameter's gradient and
// every quantizer's scale and zero point, with shared quantizers updated per call as PyTorch
// does (linquant's default differs on purpose). One run per model serves three tests: placement,
// training numerics, BatchNorm batch counts. The reference directory comes from
// LINQUANT_TORCH_REFERENCE_DIR (set by ctest, which runs the generator as a fixture); without
// it the tests fail rather than skip, so a broken fixture cannot pass silently.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

// Largest absolute difference over the largest magnitude of the reference tensor. Zero: the
// project claims bit-identity with prepare_qat_fx (the reference is made at test time on the
// same machine, so both sides run the same kernels), and this test asserts exactly that.
constexpr double kTolerance = 0.0;

std::string reference_dir() {
  const char* dir = std::getenv("LINQUANT_TORCH_REFERENCE_DIR");
  return dir ? dir : "";
}

// The reference is a TorchScript container whose attributes are the recorded run.
struct Reference {
  torch::jit::Module container;

  at::Tensor tensor(const std::string& key) const { return container.attr(key).toTensor(); }
  int64_t integer(const std::string& key) const { return container.attr(key).toInt(); }
  double number(const std::string& key) const { return container.attr(key).toDouble(); }
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    for (const c10::IValue& v : container.attr(key).toListRef()) out.push_back(v.toStringRef());
    return out;
  }
  // An entry of a Dict[str, Tensor] attribute; undefined if absent.
  at::Tensor entry(const std::string& key, const std::string& name) const {
    const c10::impl::GenericDict dict = container.attr(key).toGenericDict();
    const auto it = dict.find(c10::IValue(name));
    return it == dict.end() ? at::Tensor() : it->value().toTensor();
  }
};

// The largest relative error of each compared quantity, where it happened, and the first
// comparison over the tolerance (the one to debug: later ones follow from it).
class Comparison {
 public:
  void compare(const std::string& quantity, int64_t step, const std::string& tensor,
               const at::Tensor& actual, const at::Tensor& expected) {
    const std::string where =
        (step >= 0 ? "step " + std::to_string(step) + ", " : std::string()) + tensor;
    double error = 0.0;
    if (!actual.defined() || actual.sizes() != expected.sizes()) {
      error = std::numeric_limits<double>::infinity();
    } else if (expected.numel() > 0) {
      const at::Tensor a = actual.detach().to(at::kDouble);
      const at::Tensor e = expected.detach().to(at::kDouble);
      const double diff = (a - e).abs().max().item<double>();
      const double scale = e.abs().max().item<double>();
      error = scale > 0.0 ? diff / scale : diff;
      if (std::isnan(error)) error = std::numeric_limits<double>::infinity();
    }
    if (!worst_.count(quantity)) order_.push_back(quantity);
    Worst& worst = worst_[quantity];
    ++worst.count;
    if (error > worst.error || worst.where.empty()) worst = {error, where, worst.count};
    if (error > kTolerance && !first_failure_) {
      std::ostringstream out;
      out << quantity << " at " << where << ": relative error " << error;
      if (actual.defined() && actual.sizes() != expected.sizes()) {
        out << " (shape " << actual.sizes() << ", expected " << expected.sizes() << ")";
      } else if (actual.defined() && actual.numel() == 1) {
        out << " (got " << actual.item<double>() << ", expected " << expected.item<double>() << ")";
      }
      first_failure_ = out.str();
    }
  }

  const std::optional<std::string>& first_failure() const { return first_failure_; }

  std::string table(const std::string& model) const {
    std::ostringstream out;
    out << "[cross-check " << model << "] worst relative error per quantity (tolerance "
        << kTolerance << "):\n";
    for (const std::string& quantity : order_) {
      const Worst& w = worst_.at(quantity);
      out << "  " << std::left << std::setw(44) << quantity << std::right << std::setw(12)
          << std::setprecision(3) << std::scientific << w.error << "  "
          << (w.error > 0.0 ? "at " + w.where : std::string("(bit-identical)")) << "  ("
          << w.count << " comparisons)\n";
    }
    return out.str();
  }

 private:
  struct Worst {
    double error = 0.0;
    std::string where;
    int64_t count = 0;
  };
  std::map<std::string, Worst> worst_;
  std::vector<std::string> order_;
  std::optional<std::string> first_failure_;
};

// "after <node> (<op>, module <scope>)" for the value a fake_quantize node reads.
std::string site(const ir::Graph& graph, const ir::Node& fq) {
  const auto producer = graph.producer(fq.inputs.at(0));
  if (!producer) return "after input";
  const ir::Node& node = graph.nodes()[*producer];
  return "after " + node.name + " (" + ir::to_string(node.op) + ", module '" +
         node.scope.module_name + "')";
}

// One model's run, done once and shared by the tests below (resnet18 takes seconds).
struct ModelRun {
  std::string setup_error;  // the run could not be made (missing reference, no parameter, ...)
  // The quantizer of every fake_quantize node in graph order, and the quantizer FX calls at
  // every activation_post_process node: same count, order and sharing means same placement.
  std::vector<std::string> placement, expected_placement;
  std::vector<std::string> weight_quantizers, expected_weight_quantizers;
  Comparison numerics;
  // BatchNorm num_batches_tracked after the run: name, linquant, torch.
  std::vector<std::tuple<std::string, int64_t, int64_t>> batch_counts;
};

std::vector<std::string> placement_of(const ir::Graph& graph, std::vector<std::string>* sites) {
  std::vector<std::string> names;
  for (const ir::Node& node : graph.nodes()) {
    if (node.op != ir::Op::fake_quantize) continue;
    names.push_back(node.attrs.s("quantizer"));
    sites->push_back(site(graph, node));
  }
  return names;
}

void print_placement(const std::string& model, const ModelRun& run,
                     const std::vector<std::string>& sites,
                     const std::vector<std::string>& expected_sites) {
  const auto& names = run.placement;
  const auto& expected = run.expected_placement;
  std::ostringstream listing;
  listing << "[cross-check " << model << "] activation quantizers, linquant | torch FX:\n";
  for (size_t k = 0; k < std::max(names.size(), expected.size()); ++k) {
    const bool same = k < names.size() && k < expected.size() && names[k] == expected[k];
    listing << (same ? "  " : "! ") << std::left << std::setw(28)
            << (k < names.size() ? names[k] : "-") << std::setw(60)
            << (k < sites.size() ? sites[k] : "") << "| "
            << (k < expected.size() ? expected[k] + " " + expected_sites[k] : "-") << "\n";
  }
  std::cout << listing.str();
}

void train_and_compare(const std::string& model, ModelRun& run) {
  const std::string dir = reference_dir();
  if (dir.empty()) {
    throw std::runtime_error(
        "LINQUANT_TORCH_REFERENCE_DIR is not set: run through ctest (the quantizer test "
        "requires the torch_reference fixture), or run "
        "tests/quantizer/torch_reference/make_qat_reference.py DIR and set it to DIR");
  }
  const std::string model_path = dir + "/" + model + ".pt";
  const std::string reference_path = dir + "/" + model + ".reference.pt";
  for (const std::string& path : {model_path, reference_path}) {
    if (!std::filesystem::exists(path)) throw std::runtime_error(path + " is missing");
  }

  const auto started = std::chrono::steady_clock::now();
  const Reference ref{torch::jit::load(reference_path)};
  // Same split of reductions as the Python run.
  at::set_num_threads(static_cast<int>(ref.integer("num_threads")));
  const at::Tensor m = ref.tensor("milestones");
  const Milestones milestones{m[0].item<int64_t>(), m[1].item<int64_t>(), m[2].item<int64_t>(),
                              m[3].item<int64_t>()};
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig()
                        .set_quantization_scheme(QuantizationScheme::affine)
                        .set_milestones(milestones));

  torch::jit::Module float_model = torch::jit::load(model_path);
  LinearQuantizer quantizer(float_model, config);
  GraphModule prepared = quantizer.prepare({ref.tensor("example")});
  // A quantizer shared by several nodes (maxpool/avgpool/flatten after a conv block) moves
  // once per call in PyTorch, once per forward from the union of its inputs in linquant's
  // default (coremltools.md Appendix C item 5); compare with PyTorch's behaviour.
  prepared->set_shared_observer_update(SharedObserverUpdate::per_call);

  std::vector<std::string> sites;
  run.placement = placement_of(prepared->graph(), &sites);
  run.expected_placement = ref.strings("act_names");
  print_placement(model, run, sites, ref.strings("act_sites"));
  for (const auto& [name, spec] : prepared->graph().quantizers()) {
    if (spec.is_weight) run.weight_quantizers.push_back(name);
  }
  run.expected_weight_quantizers = ref.strings("weight_quantizers");
  std::sort(run.expected_weight_quantizers.begin(), run.expected_weight_quantizers.end());

  // The optimizer over the parameters in Python's named_parameters() order.
  const std::vector<std::string> param_names = ref.strings("param_names");
  const auto named = prepared->named_parameters();
  std::vector<at::Tensor> params;
  for (const std::string& name : param_names) {
    const at::Tensor* p = named.find(name);
    if (!p) throw std::runtime_error("the prepared model has no parameter '" + name + "'");
    params.push_back(*p);
  }
  if (named.size() != params.size()) {
    throw std::runtime_error("the prepared model has " + std::to_string(named.size()) +
                             " parameters, Python's " + std::to_string(params.size()));
  }
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(ref.number("lr")));

  // Activation quantizers by their canonical (first) name; prepared->quantizer throws for
  // unknown names, which the placement test reports first.
  const std::vector<std::string> act_quantizers = ref.strings("act_quantizers");
  const std::vector<std::string> weight_quantizers = ref.strings("weight_quantizers");
  const at::Tensor inputs = ref.tensor("inputs");
  const at::Tensor targets = ref.tensor("targets");
  const at::Tensor losses = ref.tensor("losses");
  const at::Tensor outputs = ref.tensor("outputs");
  const at::Tensor act_scale = ref.tensor("act_scale");
  const at::Tensor act_zero_point = ref.tensor("act_zero_point");
  const int64_t steps = ref.integer("steps");
  Comparison& cmp = run.numerics;
  for (int64_t k = 0; k < steps; ++k) {
    quantizer.step();  // before the forward, as in the reference (and coremltools' tutorial)
    optimizer.zero_grad();
    const at::Tensor output = prepared->forward(inputs[k]);
    const at::Tensor loss = torch::nn::functional::cross_entropy(output, targets[k]);
    loss.backward();

    cmp.compare("loss", k, "loss", loss, losses[k]);
    cmp.compare("output", k, "output", output, outputs[k]);
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& name = param_names[i];
      const at::Tensor grad = params[i].grad();
      if (!grad.defined()) {
        throw std::runtime_error("step " + std::to_string(k) + ": no gradient for " + name);
      }
      const at::Tensor index = ref.entry("grad_index", name);
      cmp.compare("gradient (sampled elements)", k, name, grad.reshape(-1).index_select(0, index),
                  ref.entry("grad_sample", name)[k]);
      cmp.compare("gradient L2 norm", k, name, grad.to(at::kDouble).norm(),
                  ref.entry("grad_norm", name)[k]);
      if (k == steps - 1) {
        cmp.compare("gradient (last step, every element)", k, name, grad,
                    ref.entry("last_grad", name));
      }
    }
    for (size_t i = 0; i < act_quantizers.size(); ++i) {
      const FakeQuantize fq = prepared->quantizer(act_quantizers[i]);
      cmp.compare("activation scale", k, act_quantizers[i], fq->scale.reshape({}),
                  act_scale[k][static_cast<int64_t>(i)]);
      cmp.compare("activation zero point", k, act_quantizers[i], fq->zero_point.reshape({}),
                  act_zero_point[k][static_cast<int64_t>(i)]);
    }
    for (const std::string& q : weight_quantizers) {
      const FakeQuantize fq = prepared->quantizer(q);
      cmp.compare("weight scale", k, q, fq->scale, ref.entry("weight_scale", q)[k]);
      cmp.compare("weight zero point", k, q, fq->zero_point, ref.entry("weight_zero_point", q)[k]);
    }
    optimizer.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = param_names[i];
    cmp.compare("parameter after last update (sampled)", -1, name,
                params[i].detach().reshape(-1).index_select(0, ref.entry("grad_index", name)),
                ref.entry("final_param_sample", name));
  }
  const auto buffers = prepared->named_buffers();
  const std::string counter = "num_batches_tracked";
  for (const auto& item : ref.container.attr("final_buffers").toGenericDict()) {
    const std::string& name = item.key().toStringRef();
    const at::Tensor* buffer = buffers.find(name);
    if (name.size() > counter.size() &&
        name.compare(name.size() - counter.size(), counter.size(), counter) == 0) {
      run.batch_counts.emplace_back(name, buffer ? buffer->item<int64_t>() : -1,
                                    item.value().toTensor().item<int64_t>());
      continue;
    }
    cmp.compare("BatchNorm running mean/var after the run", -1, name,
                buffer ? *buffer : at::Tensor(), item.value().toTensor());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << cmp.table(model) << "[cross-check " << model << "] " << steps << " steps in "
            << std::fixed << std::setprecision(1) << seconds << " s (load, prepare, train)\n";
}

// The run of `model`, made by the first test that asks for it.
const ModelRun& run_of(const std::string& model) {
  static std::map<std::string, ModelRun> runs;
  const auto found = runs.find(model);
  if (found != runs.end()) return found->second;
  ModelRun& run = runs[model];
  try {
    train_and_compare(model, run);
  } catch (const std::exception& e) {
    run.setup_error = e.what();
  }
  return run;
}

class TorchCrossCheck : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchCrossCheck, PlacementMatchesPrepareQatFx) {
  const ModelRun& run = run_of(GetParam());
  ASSERT_TRUE(run.setup_error.empty()) << run.setup_error;
  EXPECT_EQ(run.placement, run.expected_placement)
      << "activation quantizer placement (graph order, shared names) differs from "
         "prepare_qat_fx; the listing above marks the differing rows with '!'";
  EXPECT_EQ(run.weight_quantizers, run.expected_weight_quantizers);
}

TEST_P(TorchCrossCheck, TrainingMatchesPrepareQatFx) {
  const ModelRun& run = run_of(GetParam());
  ASSERT_TRUE(run.setup_error.empty()) << run.setup_error;
  EXPECT_FALSE(run.numerics.first_failure().has_value())
      << "first difference over " << kTolerance << ": "
      << run.numerics.first_failure().value_or("");
}

// Kept apart from the numerics: the counter only matters for momentum=None BatchNorm (which
// capture rejects) and for state dicts, so a wrong count does not hide a numerical match.
TEST_P(TorchCrossCheck, BatchNormCountsMatchPrepareQatFx) {
  const ModelRun& run = run_of(GetParam());
  ASSERT_TRUE(run.setup_error.empty()) << run.setup_error;
  ASSERT_FALSE(run.batch_counts.empty());
  std::ostringstream wrong;
  size_t count = 0;
  for (const auto& [name, got, expected] : run.batch_counts) {
    if (got == expected) continue;
    if (count++ < 3) wrong << "\n  " << name << ": " << got << ", PyTorch " << expected;
  }
  EXPECT_EQ(count, 0u) << count << " of " << run.batch_counts.size()
                       << " BatchNorm num_batches_tracked differ after the run (-1: no such "
                          "buffer in the prepared model), e.g."
                       << wrong.str();
}

INSTANTIATE_TEST_SUITE_P(Models, TorchCrossCheck, ::testing::Values("conv_bn_net", "resnet18"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace linquant
