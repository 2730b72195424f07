// C++ modules with hand-written forwards, captured through LibTorch's tracer, against the same
// architecture written in Python and traced to TorchScript (TwinNet in
// tests/frontend/models/make_torchscript_models.py) with the same tensors copied across: the
// two prepared models must place the same quantizers under the same names and train bit for
// bit alike over 20 QAT steps that cross every milestone. Also: the prepared model shares
// the module's tensors, the modules' modes are left alone, and forwards the tracer cannot
// capture give an Error naming the module.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "torchscript_models.h"

namespace linquant {
namespace {

namespace nn = torch::nn;

struct TwinBlockImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  explicit TwinBlockImpl(int64_t channels) {
    const auto conv = nn::Conv2dOptions(channels, channels, 3).padding(1).bias(false);
    conv1 = register_module("conv1", nn::Conv2d(conv));
    bn1 = register_module("bn1", nn::BatchNorm2d(channels));
    conv2 = register_module("conv2", nn::Conv2d(conv));
    bn2 = register_module("bn2", nn::BatchNorm2d(channels));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor y = at::relu(bn1(conv1(x)));
    return at::relu(bn2(conv2(y)) + x);
  }
};
TORCH_MODULE(TwinBlock);

struct TwinNetImpl : nn::Module {
  nn::Conv2d stem{nullptr}, branch_a{nullptr}, branch_b{nullptr};
  nn::BatchNorm2d stem_bn{nullptr};
  TwinBlock block1{nullptr}, block2{nullptr};
  nn::Linear fc1{nullptr}, shared{nullptr}, head{nullptr};
  nn::BatchNorm1d fc1_bn{nullptr};
  TwinNetImpl() {
    stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(8));
    block1 = register_module("block1", TwinBlock(8));
    block2 = register_module("block2", TwinBlock(8));
    branch_a = register_module("branch_a", nn::Conv2d(nn::Conv2dOptions(8, 4, 1)));
    branch_b = register_module("branch_b", nn::Conv2d(nn::Conv2dOptions(8, 4, 3).padding(1)));
    fc1 = register_module("fc1", nn::Linear(8 * 4 * 4, 16));
    fc1_bn = register_module("fc1_bn", nn::BatchNorm1d(16));
    shared = register_module("shared", nn::Linear(16, 16));
    head = register_module("head", nn::Linear(16, 10));
  }
  at::Tensor forward(const at::Tensor& input) {
    at::Tensor x = at::relu(stem_bn(stem(input)));
    x = block2(block1(x));
    x = at::cat({at::relu(branch_a(x)), at::relu(branch_b(x))}, 1);
    x = at::max_pool2d(x, 2).flatten(1);  // records kernel_size [2], Python [2, 2]
    x = torch::nn::functional::dropout(
        at::relu(fc1_bn(fc1(x))),
        torch::nn::functional::DropoutFuncOptions().p(0.25).training(is_training()));
    x = at::relu(shared(at::relu(shared(x))));
    return head(x);
  }
};
TORCH_MODULE(TwinNet);

const char* kConfig = R"(
global_config:
  milestones: [2, 5, 8, 12]
module_type_configs:
  Linear:
    weight_per_channel: false
module_name_configs:
  block2.conv2: null
  branch_b:
    weight_observer: min_max
)";

// A C++ TwinNet holding the values of the TorchScript twin's tensors.
TwinNet cpp_twin(const torch::jit::Module& script) {
  TwinNet net;
  std::map<std::string, at::Tensor> values;
  for (const auto& item : script.named_parameters()) values[item.name] = item.value;
  for (const auto& item : script.named_buffers()) values[item.name] = item.value;
  const at::NoGradGuard no_grad;
  size_t copied = 0;
  for (auto& item : net->named_parameters()) item.value().copy_(values.at(item.key())), ++copied;
  for (auto& item : net->named_buffers()) item.value().copy_(values.at(item.key())), ++copied;
  EXPECT_EQ(copied, values.size());
  return net;
}

// What one QAT run records: per step the loss, the output and every gradient; at the end the
// prepared model's buffers (every observer's range and qparams, by quantizer name).
struct QatRun {
  std::vector<at::Tensor> losses, outputs;
  std::vector<std::map<std::string, at::Tensor>> gradients;
  std::map<std::string, at::Tensor> buffers;
  std::vector<std::string> report_names;
};

QatRun train(LinearQuantizer& quantizer, const std::map<std::string, at::Tensor>& parameters) {
  QatRun run;
  GraphModule model =
      quantizer.prepare({at::randn({4, 3, 8, 8}, at::TensorOptions().dtype(at::kFloat))});
  std::vector<at::Tensor> list;
  for (const auto& [name, tensor] : parameters) list.push_back(tensor);
  torch::optim::SGD optimizer(list, torch::optim::SGDOptions(0.05).momentum(0.9));
  model->train();
  for (int step = 0; step < 20; ++step) {
    at::manual_seed(100 + step);  // the data and the dropout masks
    const at::Tensor input = at::randn({8, 3, 8, 8});
    const at::Tensor target = at::randint(0, 10, {8}, at::kLong);
    optimizer.zero_grad();
    const at::Tensor output = model->forward(input);
    const at::Tensor loss = at::cross_entropy_loss(output, target);
    loss.backward();
    optimizer.step();
    quantizer.step();
    run.losses.push_back(loss.detach().clone());
    run.outputs.push_back(output.detach().clone());
    std::map<std::string, at::Tensor> gradients;
    for (const auto& [name, tensor] : parameters) {
      if (tensor.grad().defined()) gradients[name] = tensor.grad().clone();
    }
    run.gradients.push_back(gradients);
  }
  for (const auto& item : model->named_buffers()) run.buffers[item.key()] = item.value().clone();
  for (const ReportRow& row : quantizer.report().rows)
    run.report_names.push_back(row.name + " " + row.type + " " + row.qscheme + " " + row.dtype +
                               (row.per_channel ? " per-channel" : ""));
  return run;
}

void expect_identical(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::equal(a, b)) << what << ": largest difference "
                               << (a - b).abs().max().item<double>();
}

class CppModule : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }
  void TearDown() override { at::set_num_threads(2); }
};

TEST_F(CppModule, TrainsBitForBitLikeItsTorchScriptTwin) {
  torch::jit::Module script = torch::jit::load(testing::models_dir() + "/twin_traced.pt");
  TwinNet net = cpp_twin(script);
  const LinearQuantizerConfig config = LinearQuantizerConfig::from_yaml(kConfig);

  std::map<std::string, at::Tensor> cpp_parameters, script_parameters;
  for (const auto& item : net->named_parameters()) cpp_parameters[item.key()] = item.value();
  for (const auto& item : script.named_parameters()) script_parameters[item.name] = item.value;

  at::manual_seed(0);
  LinearQuantizer cpp_quantizer(net, config);
  const QatRun cpp = train(cpp_quantizer, cpp_parameters);
  at::manual_seed(0);
  LinearQuantizer script_quantizer(script, config);
  const QatRun reference = train(script_quantizer, script_parameters);

  EXPECT_EQ(cpp.report_names, reference.report_names);
  EXPECT_GT(cpp.report_names.size(), 20u);
  for (size_t step = 0; step < reference.losses.size(); ++step) {
    const std::string at = "step " + std::to_string(step + 1);
    expect_identical(cpp.losses[step], reference.losses[step], at + " loss");
    expect_identical(cpp.outputs[step], reference.outputs[step], at + " output");
    ASSERT_EQ(cpp.gradients[step].size(), reference.gradients[step].size()) << at;
    for (const auto& [name, gradient] : reference.gradients[step]) {
      ASSERT_TRUE(cpp.gradients[step].count(name)) << at << " " << name;
      expect_identical(cpp.gradients[step].at(name), gradient, at + " gradient of " + name);
    }
  }
  ASSERT_EQ(cpp.buffers.size(), reference.buffers.size());
  for (const auto& [name, buffer] : reference.buffers) {
    ASSERT_TRUE(cpp.buffers.count(name)) << name;
    expect_identical(cpp.buffers.at(name), buffer, "buffer " + name);
  }
}

TEST_F(CppModule, WeightedOpsCarryTheirModulesNameAndType) {
  TwinNet net;
  LinearQuantizer quantizer(net, LinearQuantizerConfig::from_yaml(kConfig));
  const GraphModule model = quantizer.prepare({at::randn({2, 3, 8, 8})});
  std::map<std::string, std::pair<std::string, bool>> scopes;  // node -> (type, functional)
  for (const ir::Node& node : model->graph().nodes()) {
    scopes[node.name] = {node.scope.module_type, node.scope.functional};
  }
  EXPECT_EQ(scopes.at("block1.conv1"), std::make_pair(std::string("Conv2d"), false));
  EXPECT_EQ(scopes.at("shared"), std::make_pair(std::string("Linear"), false));
  EXPECT_EQ(scopes.at("shared_1"), std::make_pair(std::string("Linear"), false));
  EXPECT_EQ(scopes.at("add").first, "TwinNet");  // functional, attributed to the root
  EXPECT_TRUE(scopes.at("add").second);
}

TEST_F(CppModule, PreparedModelSharesTheModulesTensorsAndModes) {
  TwinNet net;
  net->train();
  net->block1->eval();
  const at::Tensor weight = net->stem->weight;
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.1));
  LinearQuantizer quantizer(net, LinearQuantizerConfig::from_yaml(kConfig));
  GraphModule model = quantizer.prepare({at::randn({2, 3, 8, 8})});
  EXPECT_TRUE(net->is_training());
  EXPECT_FALSE(net->block1->is_training());
  EXPECT_FALSE(net->block1->conv1->is_training());
  EXPECT_TRUE(net->block2->is_training());
  const at::Tensor before = weight.clone();
  model->train();
  optimizer.zero_grad();
  model->forward(at::randn({4, 3, 8, 8})).pow(2).mean().backward();
  optimizer.step();
  EXPECT_FALSE(at::equal(before, net->stem->weight));
  EXPECT_TRUE(net->stem->weight.is_same(weight));
}

struct BranchingImpl : nn::Module {
  nn::Linear fc{nullptr};
  BranchingImpl() { fc = register_module("fc", nn::Linear(4, 4)); }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor y = fc(x);
    return y.sum().item<float>() > 0 ? at::relu(y) : at::sigmoid(y);
  }
};
TORCH_MODULE(Branching);

struct BatchBakedInImpl : nn::Module {
  nn::Linear fc{nullptr};
  BatchBakedInImpl() { fc = register_module("fc", nn::Linear(16, 4)); }
  at::Tensor forward(const at::Tensor& x) { return fc(x.reshape({x.size(0), 16})); }
};
TORCH_MODULE(BatchBakedIn);

struct ScoreImpl : nn::Module {
  nn::Linear fc{nullptr};
  ScoreImpl() { fc = register_module("fc", nn::Linear(4, 4)); }
  std::tuple<at::Tensor, double> forward(const at::Tensor& x) { return {fc(x), 1.5}; }
};
TORCH_MODULE(Score);

std::string prepare_error(LinearQuantizer& quantizer, const at::Tensor& input) {
  try {
    quantizer.prepare({input});
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST_F(CppModule, ForwardsTheTracerCannotCaptureAreErrorsNamingTheModule) {
  Branching branching;
  LinearQuantizer a(branching);
  const at::Tensor positive = at::ones({2, 4}) * 10;
  {
    const at::NoGradGuard no_grad;
    branching->fc->weight.fill_(0.1);
    branching->fc->bias.fill_(0.1);
  }
  const std::string branch = prepare_error(a, positive);
  EXPECT_NE(branch.find("cannot capture Branching: its forward records different ops"),
            std::string::npos)
      << branch;
  EXPECT_NE(branch.find("aten::relu vs aten::sigmoid"), std::string::npos) << branch;

  BatchBakedIn baked;
  LinearQuantizer b(baked);
  const std::string sizes = prepare_error(b, at::randn({2, 4, 4}));
  EXPECT_NE(sizes.find("cannot capture BatchBakedIn"), std::string::npos) << sizes;
  EXPECT_NE(sizes.find("x.size(0) becomes a constant"), std::string::npos) << sizes;

  Score score;
  LinearQuantizer c(score);
  const std::string result = prepare_error(c, at::randn({2, 4}));
  EXPECT_NE(result.find("the forward of Score returns a Double"), std::string::npos) << result;

  LinearQuantizer d(branching);
  const std::string count = prepare_error(d, at::Tensor());
  EXPECT_NE(count.find("undefined tensor"), std::string::npos) << count;
}

}  // namespace
}  // namespace linquant
