// GraphModule as a torch::nn::Module: qualified names, the model's own TensorImpls, buffers
// of quantizers and freeze flags, torch::save / torch::load round trips that let training go
// on identically, and record_shapes leaving every piece of state alone.
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <set>
#include <sstream>

#include "graph_builder.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

// x -> fq -> layer1.0.conv1 (layer1.0.bn1 fused, weight fq) -> relu -> fq -> mean -> fc (weight fq)
struct Model {
  at::Tensor conv_w = at::randn({8, 3, 3, 3}).requires_grad_();
  at::Tensor bn_w = (at::rand({8}) + 0.5).requires_grad_();
  at::Tensor bn_b = at::randn({8}).requires_grad_();
  at::Tensor mean = at::zeros({8});
  at::Tensor var = at::ones({8});
  at::Tensor count = at::zeros({}, at::kLong);
  at::Tensor fc_w = at::randn({4, 8}).requires_grad_();
  at::Tensor fc_b = at::randn({4}).requires_grad_();

  std::vector<at::Tensor> parameters() const { return {conv_w, bn_w, bn_b, fc_w, fc_b}; }

  ir::Graph graph() const {
    FakeQuantizeOptions weights;
    weights.range = QuantRange::qint8();
    weights.ch_axis = 0;
    ir::Graph g;
    g.add_quantizer("activation_post_process_0", {FakeQuantizeOptions{}, false});
    g.add_quantizer("activation_post_process_1", {FakeQuantizeOptions{}, false});
    g.add_quantizer("layer1.0.conv1.weight_fake_quant", {weights, true});
    g.add_quantizer("fc.weight_fake_quant", {weights, true});
    ValueId v = add(g, Op::fake_quantize, {g.add_input("x")},
                    {{"quantizer", S("activation_post_process_0")}});
    v = add_conv(g, v, "layer1.0.conv1", conv_w, at::Tensor(), {1, 1}, {1, 1});
    last_node(g).attrs.set("weight_quantizer", std::string("layer1.0.conv1.weight_fake_quant"));
    add_bn_tensors(g, "layer1.0.bn1", bn_w, bn_b, mean, var, count);
    fuse_bn(g, "layer1.0.conv1", "layer1.0.bn1", 1e-5, 0.1);
    v = add(g, Op::relu, {v}, {}, "layer1.0.relu", "ReLU");
    v = add(g, Op::fake_quantize, {v}, {{"quantizer", S("activation_post_process_1")}});
    v = add(g, Op::mean, {v}, {{"dims", L({2, 3})}, {"keepdim", B(false)}});
    v = add_linear(g, v, "fc", fc_w, fc_b);
    last_node(g).attrs.set("weight_quantizer", std::string("fc.weight_fake_quant"));
    g.set_outputs({v});
    return g;
  }
};

void train_steps(GraphModule& gm, torch::optim::Optimizer& optimizer, int steps, int seed) {
  at::manual_seed(seed);
  for (int k = 0; k < steps; ++k) {
    const at::Tensor x = at::randn({4, 3, 6, 6});
    optimizer.zero_grad();
    gm->forward(x).pow(2).mean().backward();
    optimizer.step();
  }
}

template <typename Dict>
std::set<std::string> keys_of(const Dict& dict) {
  std::set<std::string> keys;
  for (const auto& item : dict) keys.insert(item.key());
  return keys;
}

void expect_same_state(GraphModule& a, GraphModule& b) {
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  ASSERT_EQ(keys_of(pa), keys_of(pb));
  for (const auto& item : pa) EXPECT_TRUE(at::equal(item.value(), pb[item.key()])) << item.key();
  const auto ba = a->named_buffers();
  const auto bb = b->named_buffers();
  ASSERT_EQ(keys_of(ba), keys_of(bb));
  for (const auto& item : ba) {
    EXPECT_EQ(item.value().sizes(), bb[item.key()].sizes()) << item.key();
    EXPECT_TRUE(at::equal(item.value(), bb[item.key()])) << item.key();
  }
}

TEST(ModuleState, QualifiedNamesOnTheModelsOwnTensors) {
  at::manual_seed(20);
  Model model;
  GraphModule gm(model.graph());
  const auto params = gm->named_parameters();
  EXPECT_EQ(keys_of(params),
            (std::set<std::string>{"fc.bias", "fc.weight", "layer1.0.bn1.bias",
                                   "layer1.0.bn1.weight", "layer1.0.conv1.weight"}));
  EXPECT_EQ(params["layer1.0.conv1.weight"].unsafeGetTensorImpl(),
            model.conv_w.unsafeGetTensorImpl());
  EXPECT_EQ(params["layer1.0.bn1.weight"].unsafeGetTensorImpl(), model.bn_w.unsafeGetTensorImpl());
  EXPECT_EQ(params["fc.bias"].unsafeGetTensorImpl(), model.fc_b.unsafeGetTensorImpl());

  const std::set<std::string> buffers = keys_of(gm->named_buffers());
  for (const char* name :
       {"layer1.0.bn1.running_mean", "layer1.0.bn1.running_var",
        "layer1.0.bn1.num_batches_tracked", "layer1.0.conv1.freeze_bn",
        "layer1.0.conv1.weight_fake_quant.scale", "layer1.0.conv1.weight_fake_quant.zero_point",
        "layer1.0.conv1.weight_fake_quant.activation_post_process.min_val",
        "activation_post_process_0.fake_quant_enabled",
        "activation_post_process_1.observer_enabled", "fc.weight_fake_quant.scale"}) {
    EXPECT_TRUE(buffers.count(name)) << name;
  }
  EXPECT_EQ(gm->named_buffers()["layer1.0.bn1.running_var"].unsafeGetTensorImpl(),
            model.var.unsafeGetTensorImpl());

  const auto modules = gm->named_modules("", /*include_self=*/false);
  EXPECT_EQ(modules["layer1.0.conv1"]->name(), "Conv2d");
  EXPECT_EQ(modules["layer1"]->name(), "Module");
  EXPECT_EQ(modules["fc"]->name(), "Linear");
  EXPECT_EQ(gm->quantizer("fc.weight_fake_quant").get(),
            modules["fc.weight_fake_quant"].get());
  EXPECT_EQ(gm->quantizers().size(), 4u);
}

TEST(ModuleState, AnOptimizerOnTheOriginalModelTrainsTheGraph) {
  at::manual_seed(21);
  Model model;
  GraphModule gm(model.graph());
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(0.1));
  const at::Tensor before = model.conv_w.clone();
  train_steps(gm, sgd, 1, 5);
  EXPECT_FALSE(at::equal(model.conv_w, before));
  EXPECT_EQ(model.count.item<int64_t>(), 1);
}

TEST(ModuleState, SaveAndLoadRestoreEverythingAndTrainingContinuesIdentically) {
  at::manual_seed(22);
  Model model_a;
  Model model_b;  // other random values
  GraphModule a(model_a.graph());
  GraphModule b(model_b.graph());
  {
    torch::optim::SGD sgd(model_a.parameters(), torch::optim::SGDOptions(0.05));
    train_steps(a, sgd, 2, 7);
  }
  a->quantizer("activation_post_process_1")->disable_fake_quant();
  a->quantizer("fc.weight_fake_quant")->disable_observer();
  a->freeze_bn_stats();

  std::stringstream stream;
  torch::save(a, stream);
  torch::load(b, stream);
  expect_same_state(a, b);
  EXPECT_TRUE(b->is_bn_frozen("layer1.0.conv1"));
  EXPECT_FALSE(b->quantizer("activation_post_process_1")->is_fake_quant_enabled());
  EXPECT_FALSE(b->quantizer("fc.weight_fake_quant")->is_observer_enabled());
  EXPECT_EQ(b->quantizer("layer1.0.conv1.weight_fake_quant")->scale.numel(), 8);
  EXPECT_EQ(model_b.count.item<int64_t>(), 2);
  // Loading assigns in place: the second model's own tensors hold the restored values.
  EXPECT_TRUE(at::equal(model_b.conv_w, model_a.conv_w));
  EXPECT_EQ(b->named_parameters()["layer1.0.conv1.weight"].unsafeGetTensorImpl(),
            model_b.conv_w.unsafeGetTensorImpl());

  const at::Tensor loaded = model_b.conv_w.clone();
  torch::optim::SGD sgd_a(model_a.parameters(), torch::optim::SGDOptions(0.05));
  torch::optim::SGD sgd_b(model_b.parameters(), torch::optim::SGDOptions(0.05));
  train_steps(a, sgd_a, 3, 9);
  train_steps(b, sgd_b, 3, 9);
  expect_same_state(a, b);
  EXPECT_FALSE(at::equal(model_b.conv_w, loaded));
}

TEST(ModuleState, RecordShapesFillsShapesAndChangesNoState) {
  at::manual_seed(23);
  Model model;
  GraphModule gm(model.graph());
  gm->train();
  std::map<std::string, at::Tensor> before;
  for (const auto& item : gm->named_buffers()) before[item.key()] = item.value().clone();

  gm->record_shapes({at::randn({2, 3, 6, 6})});

  for (const auto& item : gm->named_buffers()) {
    EXPECT_EQ(item.value().sizes(), before[item.key()].sizes()) << item.key();
    EXPECT_TRUE(at::equal(item.value(), before[item.key()])) << item.key();
  }
  for (const at::Tensor& p : model.parameters()) EXPECT_FALSE(p.grad().defined());
  const ir::Graph& g = gm->graph();
  EXPECT_EQ(g.value(g.inputs()[0]).shape, (std::vector<int64_t>{2, 3, 6, 6}));
  const ir::Node& conv = g.nodes()[*g.find_node("layer1.0.conv1")];
  EXPECT_EQ(g.value(conv.outputs[0]).shape, (std::vector<int64_t>{2, 8, 6, 6}));
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (std::vector<int64_t>{2, 4}));
  for (const ir::Node& node : g.nodes()) EXPECT_FALSE(g.value(node.outputs[0]).shape.empty());

  // An ordinary forward still observes and counts.
  gm->forward(at::randn({2, 3, 6, 6}));
  EXPECT_EQ(model.count.item<int64_t>(), 1);
}

}  // namespace
}  // namespace linquant
