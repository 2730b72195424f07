// Capture of torch::nn::Sequential: op sequences, attributes, names, the model's own tensors,
// float calls for listed children and errors for unknown ones.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/pooling.h>

#include <set>

#include "frontend_test_util.h"
#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

namespace nn = torch::nn;
using testing::op_sequence;

std::string capture_error(nn::Sequential model, const CaptureOptions& options = {}) {
  try {
    capture(model, options);
  } catch (const Error& error) {
    return error.what();
  }
  return "captured without error";
}

// A user module the frontend has no rule for.
struct ScaleImpl : nn::Module {
  ScaleImpl() { factor = register_parameter("factor", torch::full({1}, 2.0)); }
  torch::Tensor forward(const torch::Tensor& x) { return x * factor; }
  torch::Tensor factor;
};
TORCH_MODULE(Scale);

// LibTorch cannot store a plain Sequential inside another (its forward is a template), so
// nested Sequentials are subclasses with a tensor forward, as LibTorch's docs recommend.
struct NestedImpl : nn::SequentialImpl {
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Nested);

TEST(SequentialCapture, ConvBnReluOpsAttributesAndTensors) {
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)),
                       nn::BatchNorm2d(8), nn::ReLU());
  const ir::Graph graph = capture(model);
  EXPECT_EQ(op_sequence(graph), (std::vector<std::string>{"conv", "batch_norm", "relu"}));
  const std::vector<std::pair<std::string, std::string>> scopes = {
      {"0", "Conv2d"}, {"1", "BatchNorm2d"}, {"2", "ReLU"}};
  for (size_t k = 0; k < scopes.size(); ++k) {
    const ir::Node& node = graph.nodes()[k];
    EXPECT_EQ(node.name, scopes[k].first);
    EXPECT_EQ(node.scope.module_name, scopes[k].first);
    EXPECT_EQ(node.scope.module_type, scopes[k].second);
    EXPECT_FALSE(node.scope.functional);
  }
  const ir::Attributes& conv = graph.nodes()[0].attrs;
  EXPECT_EQ(conv.s("weight"), "0.weight");
  EXPECT_FALSE(conv.has("bias"));
  EXPECT_EQ(conv.ints("stride"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.ints("padding"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.ints("dilation"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.i("groups"), 1);
  EXPECT_EQ(conv.i("spatial_dims"), 2);
  const ir::Attributes& bn = graph.nodes()[1].attrs;
  EXPECT_EQ(bn.s("weight"), "1.weight");
  EXPECT_EQ(bn.s("bias"), "1.bias");
  EXPECT_EQ(bn.s("running_mean"), "1.running_mean");
  EXPECT_EQ(bn.s("running_var"), "1.running_var");
  EXPECT_DOUBLE_EQ(bn.f("eps"), 1e-5);
  EXPECT_DOUBLE_EQ(bn.f("momentum"), 0.1);
  EXPECT_EQ(graph.outputs(), graph.nodes()[2].outputs);
  EXPECT_EQ(graph.nodes()[0].inputs, graph.inputs());

  // Exactly the model's parameters and buffers, as the same tensor objects.
  std::set<std::string> expected;
  for (const auto& item : model->named_parameters()) {
    expected.insert(item.key());
    EXPECT_TRUE(graph.tensor(item.key()).is_parameter);
    EXPECT_EQ(graph.tensor(item.key()).tensor.unsafeGetTensorImpl(),
              item.value().unsafeGetTensorImpl());
  }
  for (const auto& item : model->named_buffers()) {
    expected.insert(item.key());
    EXPECT_FALSE(graph.tensor(item.key()).is_parameter);
    EXPECT_EQ(graph.tensor(item.key()).tensor.unsafeGetTensorImpl(),
              item.value().unsafeGetTensorImpl());
  }
  std::set<std::string> captured;
  for (const auto& [name, tensor] : graph.tensors()) captured.insert(name);
  EXPECT_EQ(captured, expected);
  EXPECT_TRUE(captured.count("1.num_batches_tracked"));

  // An update through the model (as an optimizer does) is seen by the graph.
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["0.weight"].add_(1.0);
  }
  EXPECT_TRUE(graph.tensor("0.weight").tensor.equal(model->named_parameters()["0.weight"]));
}

TEST(SequentialCapture, EveryModuleType) {
  Nested nested(
      nn::Conv1d(nn::Conv1dOptions(4, 4, 3).stride(2).dilation(2).groups(2)),
      nn::ConvTranspose1d(nn::ConvTranspose1dOptions(4, 4, 2).stride(2)),
      nn::MaxPool1d(nn::MaxPool1dOptions(2)), nn::AvgPool1d(nn::AvgPool1dOptions(2)),
      nn::AdaptiveAvgPool1d(nn::AdaptiveAvgPool1dOptions(3)));
  nn::Sequential model(
      nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(torch::kValid)),
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(8, 8, 2).stride(2).output_padding(1)),
      nn::BatchNorm2d(nn::BatchNorm2dOptions(8).affine(false).momentum(0.3).eps(1e-3)),
      nn::ReLU(), nn::ReLU6(), nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)),
      nn::Sigmoid(), nn::Tanh(), nn::GELU(nn::GELUOptions().approximate("tanh")), nn::SiLU(),
      nn::ELU(nn::ELUOptions().alpha(0.5)),
      nn::Hardtanh(nn::HardtanhOptions().min_val(0).max_val(6)),
      nn::MaxPool2d(nn::MaxPool2dOptions(2).ceil_mode(true)),
      nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)
                        .divisor_override(2)),
      nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({4, 4})), nn::Dropout(0.3),
      nn::Dropout2d(0.1), nn::Identity(), nn::Flatten(nn::FlattenOptions().start_dim(2)),
      nested, nn::Flatten(), nn::Linear(nn::LinearOptions(24, 4).bias(false)),
      nn::BatchNorm1d(4), nn::LayerNorm(nn::LayerNormOptions({4}).eps(1e-6)),
      nn::Softmax(nn::SoftmaxOptions(1)), nn::LogSoftmax(nn::LogSoftmaxOptions(-1)));
  const ir::Graph graph = capture(model);
  EXPECT_EQ(op_sequence(graph),
            (std::vector<std::string>{
                "conv",     "conv_transpose", "batch_norm", "relu",     "relu6",
                "leaky_relu", "sigmoid",      "tanh",       "gelu",     "silu",
                "elu",      "relu6",          "max_pool",   "avg_pool", "adaptive_avg_pool",
                "dropout",  "dropout",        "identity",   "flatten",  "conv",
                "conv_transpose", "max_pool", "avg_pool",   "adaptive_avg_pool", "flatten",
                "linear",   "batch_norm",     "layer_norm", "softmax",  "log_softmax"}))
      << ir::to_string(graph);
  auto attrs = [&](const std::string& name) -> const ir::Attributes& {
    return graph.nodes()[*graph.find_node(name)].attrs;
  };
  EXPECT_EQ(attrs("0").ints("padding"), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(attrs("1").ints("output_padding"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(attrs("1").s("bias"), "1.bias");
  EXPECT_FALSE(attrs("2").has("weight"));
  EXPECT_DOUBLE_EQ(attrs("2").f("momentum"), 0.3);
  EXPECT_DOUBLE_EQ(attrs("2").f("eps"), 1e-3);
  EXPECT_DOUBLE_EQ(attrs("5").f("negative_slope"), 0.2);
  EXPECT_EQ(attrs("8").s("approximate"), "tanh");
  EXPECT_DOUBLE_EQ(attrs("10").f("alpha"), 0.5);
  EXPECT_EQ(graph.nodes()[*graph.find_node("11")].scope.module_type, "Hardtanh");
  EXPECT_TRUE(attrs("12").b("ceil_mode"));
  EXPECT_EQ(attrs("12").ints("stride"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(attrs("13").i("divisor_override"), 2);
  EXPECT_FALSE(attrs("13").b("count_include_pad"));
  EXPECT_EQ(attrs("14").ints("output_size"), (std::vector<int64_t>{4, 4}));
  EXPECT_DOUBLE_EQ(attrs("15").f("p"), 0.3);
  EXPECT_FALSE(attrs("15").has("feature"));
  EXPECT_TRUE(attrs("16").b("feature"));
  EXPECT_EQ(attrs("18").i("start_dim"), 2);
  EXPECT_EQ(attrs("19.0").i("spatial_dims"), 1);
  EXPECT_EQ(attrs("19.0").ints("dilation"), (std::vector<int64_t>{2}));
  EXPECT_EQ(attrs("19.0").i("groups"), 2);
  EXPECT_EQ(attrs("19.0").s("weight"), "19.0.weight");
  EXPECT_EQ(attrs("19.2").i("spatial_dims"), 1);
  EXPECT_EQ(attrs("19.4").ints("output_size"), (std::vector<int64_t>{3}));
  EXPECT_FALSE(attrs("21").has("bias"));
  EXPECT_EQ(attrs("23").ints("normalized_shape"), (std::vector<int64_t>{4}));
  EXPECT_EQ(attrs("23").s("weight"), "23.weight");
  EXPECT_EQ(attrs("25").i("dim"), -1);
  EXPECT_EQ(graph.nodes()[*graph.find_node("19.1")].scope.module_type, "ConvTranspose1d");
  EXPECT_EQ(graph.tensors().size(),
            model->named_parameters().size() + model->named_buffers().size());
}

TEST(SequentialCapture, NamedChildren) {
  nn::Sequential model({{"features", Nested(nn::Conv2d(nn::Conv2dOptions(1, 2, 3)))},
                        {"act", nn::ReLU()}});
  const ir::Graph graph = capture(model);
  ASSERT_EQ(graph.nodes().size(), 2u);
  EXPECT_EQ(graph.nodes()[0].name, "features.0");
  EXPECT_EQ(graph.nodes()[0].attrs.s("weight"), "features.0.weight");
  EXPECT_EQ(graph.nodes()[1].name, "act");
  EXPECT_TRUE(graph.has_tensor("features.0.bias"));
}

TEST(SequentialCapture, UnknownChildTypeIsAnError) {
  const std::string message =
      capture_error(nn::Sequential(nn::Linear(4, 4), Nested(nn::ReLU(), Scale())));
  EXPECT_NE(message.find("Sequential child '1.1' of type Scale"), std::string::npos) << message;
  EXPECT_NE(message.find("List '1.1' in non_traceable_module_names"), std::string::npos)
      << message;
  const std::string functional =
      capture_error(nn::Sequential(nn::Functional([](torch::Tensor x) { return x.relu(); })));
  EXPECT_NE(functional.find("Sequential child '0' of type Functional"), std::string::npos)
      << functional;
}

TEST(SequentialCapture, NonTraceableChildBecomesFloatCall) {
  Scale scale;
  nn::Sequential model(nn::Linear(4, 4), Nested(nn::ReLU(), scale));
  CaptureOptions options;
  options.non_traceable_module_names = {"1.1"};
  const ir::Graph graph = capture(model, options);
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"linear", "relu", "float_module"}));
  const ir::Node& call = graph.nodes()[2];
  EXPECT_EQ(call.name, "1.1");
  EXPECT_EQ(call.attrs.s("module"), "1.1");
  EXPECT_EQ(call.scope.module_type, "Scale");
  EXPECT_EQ(call.inputs, graph.nodes()[1].outputs);
  EXPECT_EQ(graph.outputs(), call.outputs);
  EXPECT_EQ(graph.tensor("1.1.factor").tensor.unsafeGetTensorImpl(),
            scale->factor.unsafeGetTensorImpl());
  const at::Tensor x = torch::randn({2, 4});
  const auto outputs = graph.float_modules().at("1.1")({x});
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_TRUE(outputs[0].equal(x * 2.0));
}

TEST(SequentialCapture, InexpressibleConfigurationsAreErrors) {
  const std::vector<std::pair<nn::Sequential, std::string>> cases = {
      {nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 1, 3).padding(torch::kSame))),
       "Conv2d with padding \"same\""},
      {nn::Sequential(
           nn::Conv2d(nn::Conv2dOptions(1, 1, 3).padding(1).padding_mode(torch::kReflect))),
       "padding_mode kReflect"},
      {nn::Sequential(nn::BatchNorm2d(nn::BatchNorm2dOptions(4).momentum(c10::nullopt))),
       "momentum None"},
      {nn::Sequential(nn::Hardtanh()), "range other than [0, 6]"},
      {nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({c10::nullopt, 2}))),
       "output size of None"},
  };
  for (const auto& [model, expected] : cases) {
    const std::string message = capture_error(model);
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_NE(message.find("in module '0'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace linquant::frontend
