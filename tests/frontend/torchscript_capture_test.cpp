// Capture of TorchScript models traced and scripted in Python (written by the ctest fixture
// models/make_torchscript_models.py), checked against Python's own named_modules and
// named_parameters.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "frontend_test_util.h"
#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

using testing::load_facts;
using testing::load_model;
using testing::op_counts;
using testing::op_sequence;

const ir::Node& node_named(const ir::Graph& graph, const std::string& name) {
  const auto index = graph.find_node(name);
  if (!index) throw std::runtime_error("no node " + name + " in\n" + ir::to_string(graph));
  return graph.nodes()[*index];
}

TEST(TorchScriptCapture, TutorialNetOpsNamesAndAttributes) {
  const ir::Graph graph = capture(load_model("tutorial_traced"));
  ir::verify(graph);
  EXPECT_EQ(op_sequence(graph), (std::vector<std::string>{"conv", "relu", "max_pool", "flatten",
                                                          "linear", "log_softmax"}))
      << ir::to_string(graph);
  const std::vector<std::pair<std::string, std::string>> scopes = {
      {"conv", "Conv2d"}, {"relu", "ReLU"},   {"pool", "MaxPool2d"},
      {"flatten", "Flatten"}, {"dense", "Linear"}, {"softmax", "LogSoftmax"}};
  ASSERT_EQ(graph.nodes().size(), scopes.size());
  for (size_t k = 0; k < scopes.size(); ++k) {
    const ir::Node& node = graph.nodes()[k];
    EXPECT_EQ(node.name, scopes[k].first);
    EXPECT_EQ(node.scope.module_name, scopes[k].first);
    EXPECT_EQ(node.scope.module_type, scopes[k].second);
    EXPECT_FALSE(node.scope.functional);
  }
  const ir::Attributes& conv = graph.nodes()[0].attrs;
  EXPECT_EQ(conv.s("weight"), "conv.weight");
  EXPECT_EQ(conv.s("bias"), "conv.bias");
  EXPECT_EQ(conv.ints("stride"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.ints("padding"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.ints("dilation"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(conv.i("groups"), 1);
  EXPECT_EQ(conv.i("spatial_dims"), 2);
  const ir::Attributes& pool = graph.nodes()[2].attrs;
  EXPECT_EQ(pool.ints("kernel_size"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(pool.ints("stride"), (std::vector<int64_t>{2, 2}));
  EXPECT_FALSE(pool.b("ceil_mode"));
  EXPECT_EQ(graph.nodes()[3].attrs.i("start_dim"), 1);
  EXPECT_EQ(graph.nodes()[3].attrs.i("end_dim"), -1);
  EXPECT_EQ(graph.nodes()[5].attrs.i("dim"), 1);
  ASSERT_EQ(graph.inputs().size(), 1u);
  EXPECT_EQ(graph.outputs(), graph.nodes()[5].outputs);
}

TEST(TorchScriptCapture, ResNet18Counts) {
  const ir::Graph graph = capture(load_model("resnet18_traced"));
  const std::map<std::string, int> expected = {
      {"conv", 20}, {"batch_norm", 20}, {"relu", 17},   {"max_pool", 1},
      {"add", 8},   {"adaptive_avg_pool", 1}, {"flatten", 1}, {"linear", 1}};
  EXPECT_EQ(op_counts(graph), expected) << ir::to_string(graph);
  // The block's own `out += identity` is functional code of the block; its second use of
  // self.relu is a second call of the same module.
  const ir::Node& add = node_named(graph, "add");
  EXPECT_TRUE(add.scope.functional);
  EXPECT_EQ(add.scope.module_name, "layer1.0");
  EXPECT_EQ(add.scope.module_type, "BasicBlock");
  EXPECT_EQ(node_named(graph, "layer1.0.relu_1").scope.module_name, "layer1.0.relu");
  const ir::Node& flatten = node_named(graph, "flatten");
  EXPECT_TRUE(flatten.scope.functional);
  EXPECT_EQ(flatten.scope.module_name, "");
  EXPECT_EQ(flatten.scope.module_type, "ResNet");
  EXPECT_EQ(node_named(graph, "avgpool").attrs.ints("output_size"), (std::vector<int64_t>{1, 1}));
}

// Traced in train() mode: batch norms record training=True and num_batches_tracked.add_(1),
// dropout records train=True; none of that changes the graph.
TEST(TorchScriptCapture, MobileNetV2TracedInTrainMode) {
  ASSERT_TRUE(load_facts("mobilenet_v2_traced")["training"].get<bool>());
  const ir::Graph graph = capture(load_model("mobilenet_v2_traced"));
  const std::map<std::string, int> expected = {
      {"conv", 52}, {"batch_norm", 52}, {"relu6", 35},  {"add", 10},
      {"adaptive_avg_pool", 1}, {"flatten", 1}, {"dropout", 1}, {"linear", 1}};
  EXPECT_EQ(op_counts(graph), expected) << ir::to_string(graph);
  EXPECT_DOUBLE_EQ(node_named(graph, "classifier.0").attrs.f("p"), 0.2);
  const ir::Node& depthwise = node_named(graph, "features.1.conv.0.0");
  EXPECT_EQ(depthwise.attrs.i("groups"), 32);
  for (const ir::Node& node : graph.nodes()) {
    if (node.op == ir::Op::batch_norm) {
      EXPECT_DOUBLE_EQ(node.attrs.f("momentum"), 0.1);
    }
  }
}

class EveryModel : public ::testing::TestWithParam<const char*> {};

// Module names and types of nodes are Python's named_modules; graph tensors are exactly the
// model's parameters and buffers, as the very same tensor objects.
TEST_P(EveryModel, ScopesAndTensorsMatchPython) {
  const std::string name = GetParam();
  const torch::jit::Module model = load_model(name);
  const nlohmann::json facts = load_facts(name);
  CaptureOptions options;
  if (name.rfind("unsupported", 0) == 0) options.non_traceable_module_names = {"encoder.attn"};
  const ir::Graph graph = capture(model, options);
  ir::verify(graph);

  std::map<std::string, std::string> python_modules;
  for (const auto& entry : facts["modules"]) python_modules[entry[0]] = entry[1];
  for (const ir::Node& node : graph.nodes()) {
    ASSERT_TRUE(python_modules.count(node.scope.module_name))
        << node.name << " claims module '" << node.scope.module_name << "'";
    EXPECT_EQ(node.scope.module_type, python_modules[node.scope.module_name]) << node.name;
    if (!node.scope.functional && !node.scope.module_name.empty()) {
      EXPECT_EQ(node.name.rfind(node.scope.module_name, 0), 0u) << node.name;
    }
  }

  std::set<std::string> python_parameters(facts["parameters"].begin(), facts["parameters"].end());
  std::set<std::string> python_buffers(facts["buffers"].begin(), facts["buffers"].end());
  std::set<std::string> graph_parameters;
  std::set<std::string> graph_buffers;
  for (const auto& [tensor_name, tensor] : graph.tensors()) {
    (tensor.is_parameter ? graph_parameters : graph_buffers).insert(tensor_name);
  }
  EXPECT_EQ(graph_parameters, python_parameters);
  EXPECT_EQ(graph_buffers, python_buffers);
  for (const auto& parameter : model.named_parameters()) {
    EXPECT_EQ(graph.tensor(parameter.name).tensor.unsafeGetTensorImpl(),
              parameter.value.unsafeGetTensorImpl())
        << parameter.name;
  }
  for (const auto& buffer : model.named_buffers()) {
    EXPECT_EQ(graph.tensor(buffer.name).tensor.unsafeGetTensorImpl(),
              buffer.value.unsafeGetTensorImpl())
        << buffer.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModel,
                         ::testing::Values("tutorial_traced", "resnet18_traced",
                                           "mobilenet_v2_traced", "residual_traced",
                                           "residual_scripted", "residual_scripted_train",
                                           "unsupported_traced", "unsupported_scripted",
                                           "generic_traced", "sequence_traced",
                                           "pair_traced", "resample_traced"));

TEST(TorchScriptCapture, ResidualNetTraced) {
  const ir::Graph graph = capture(load_model("residual_traced"));
  EXPECT_EQ(op_sequence(graph),
            (std::vector<std::string>{
                "conv",   "batch_norm", "hardswish", "conv",   "batch_norm", "relu",
                "conv",   "add",        "relu",      "conv",   "cat",        "mean",
                "flatten", "permute",   "layer_norm", "transpose", "matmul", "softmax",
                "matmul", "gelu",       "transpose", "reshape", "reshape",   "dropout",
                "linear", "mul",        "sub",       "div"}))
      << ir::to_string(graph);
  EXPECT_EQ(node_named(graph, "reshape").attrs.ints("shape"), (std::vector<int64_t>{0, 16, -1}));
  EXPECT_EQ(node_named(graph, "reshape_1").attrs.ints("shape"), (std::vector<int64_t>{0, -1}));
  EXPECT_FALSE(node_named(graph, "block.conv1").attrs.has("bias"));
  EXPECT_EQ(node_named(graph, "cat").inputs.size(), 2u);
  EXPECT_EQ(node_named(graph, "cat").attrs.i("dim"), 1);
  EXPECT_EQ(node_named(graph, "mean").attrs.ints("dims"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(node_named(graph, "permute").attrs.ints("dims"), (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(node_named(graph, "norm").attrs.ints("normalized_shape"), (std::vector<int64_t>{16}));
  EXPECT_EQ(node_named(graph, "act").attrs.s("approximate"), "none");
  EXPECT_EQ(node_named(graph, "softmax").attrs.i("dim"), -1);
  EXPECT_DOUBLE_EQ(node_named(graph, "mul").attrs.f("scalar"), 0.5);
  EXPECT_DOUBLE_EQ(node_named(graph, "sub").attrs.f("scalar"), 1.0);
  EXPECT_DOUBLE_EQ(node_named(graph, "div").attrs.f("scalar"), 2.0);
  EXPECT_EQ(node_named(graph, "add").scope.module_type, "Block");
  EXPECT_NE(node_named(graph, "cat").scope.source.find("make_torchscript_models.py:"),
            std::string::npos);
  EXPECT_EQ(graph.outputs().size(), 2u);
  EXPECT_EQ(graph.outputs()[0], node_named(graph, "sub").outputs[0]);
  EXPECT_EQ(graph.outputs()[1], node_named(graph, "div").outputs[0]);
}

std::string without_sources(const ir::Graph& graph) {
  ir::Graph copy = graph;
  for (ir::Node& node : copy.nodes()) node.scope.source.clear();
  return ir::to_string(copy);
}

// Scripting keeps control flow (training flags, input checks, F.* calls) that tracing
// resolved; capture resolves it the same way, in eval and in train mode.
TEST(TorchScriptCapture, ScriptedResidualNetEqualsTraced) {
  const std::string traced = without_sources(capture(load_model("residual_traced")));
  EXPECT_EQ(without_sources(capture(load_model("residual_scripted"))), traced);
  EXPECT_EQ(without_sources(capture(load_model("residual_scripted_train"))), traced);
}

// The line of the model script that holds `marker`.
int line_of(const std::string& marker) {
  std::ifstream script(LINQUANT_FRONTEND_TEST_DIR "/models/make_torchscript_models.py");
  std::string line;
  for (int number = 1; std::getline(script, line); ++number) {
    if (line.find(marker) != std::string::npos) return number;
  }
  return -1;
}

// Ops without a linquant rule are captured as generic LibTorch operators; what stays an error
// is what the graph cannot express, here a forward that updates a buffer in place.
TEST(TorchScriptCapture, UnsupportedOpNamesOpModuleSourceAndFix) {
  for (const char* name : {"unsupported_traced", "unsupported_scripted"}) {
    try {
      capture(load_model(name));
      ADD_FAILURE() << name << " captured";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("aten::add_ modifying model tensor 'encoder.attn.calls'"),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("'encoder.attn' (CumulativeAttention)"), std::string::npos) << message;
      EXPECT_NE(message.find("make_torchscript_models.py:" +
                             std::to_string(line_of("# the unsupported line"))),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("List 'encoder.attn' in non_traceable_module_names"),
                std::string::npos)
          << message;
    }
  }
}

TEST(TorchScriptCapture, NonTraceableSubmoduleBecomesFloatCall) {
  for (const char* name : {"unsupported_traced", "unsupported_scripted"}) {
    torch::jit::Module model = load_model(name);
    CaptureOptions options;
    options.non_traceable_module_names = {"encoder.attn"};
    const ir::Graph graph = capture(model, options);
    EXPECT_EQ(op_sequence(graph), (std::vector<std::string>{"conv", "relu", "flatten", "transpose",
                                                            "float_module", "mean", "linear"}))
        << ir::to_string(graph);
    const ir::Node& call = node_named(graph, "encoder.attn");
    EXPECT_EQ(call.attrs.s("module"), "encoder.attn");
    EXPECT_EQ(call.scope.module_type, "CumulativeAttention");
    EXPECT_FALSE(call.scope.functional);
    EXPECT_EQ(call.inputs, node_named(graph, "transpose").outputs);
    EXPECT_TRUE(graph.tensor("encoder.attn.proj.weight").is_parameter);

    ASSERT_EQ(graph.float_modules().count("encoder.attn"), 1u);
    const at::Tensor x = torch::randn({2, 64, 8});
    const auto outputs = graph.float_modules().at("encoder.attn")({x});
    ASSERT_EQ(outputs.size(), 1u);
    torch::jit::Module attn = model.attr("encoder").toModule().attr("attn").toModule();
    EXPECT_TRUE(outputs[0].equal(attn.forward({x}).toTensor()));
  }
}

// The fixture's example inputs and outputs (for the runtime's tests) match the saved models.
TEST(TorchScriptCapture, FixtureExamplesReproduce) {
  for (const char* name : {"tutorial_traced", "resnet18_traced", "residual_traced",
                           "residual_scripted"}) {
    torch::jit::Module model = load_model(name);
    model.eval();
    std::ifstream file(testing::models_dir() + "/" + name + ".io.pt", std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
    const c10::IValue io = torch::jit::pickle_load(bytes);
    const auto dict = io.toGenericDict();
    const at::Tensor input = dict.at("input").toTensor();
    const c10::IValue expected = dict.at("output");
    const c10::IValue actual = model.forward({input});
    const at::Tensor first = actual.isTuple() ? actual.toTupleRef().elements()[0].toTensor()
                                              : actual.toTensor();
    const at::Tensor want = expected.isList() ? expected.toListRef()[0].toTensor()
                                              : expected.toTensor();
    EXPECT_TRUE(first.allclose(want, 1e-4, 1e-5)) << name;
  }
}

}  // namespace
}  // namespace linquant::frontend
