// Scripted-code features capture resolves or rejects, on small modules compiled in C++ with
// torch::jit::Module::define (no Python needed): sizes in shapes, loops, in-place ops,
// control flow, parameters used as values, and errors in the root module.
#include <ATen/core/ivalue.h>
#include <gtest/gtest.h>

#include "frontend_test_util.h"
#include "linquant/common/error.h"
#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

using testing::op_sequence;

torch::jit::Module scripted(const std::string& source) {
  torch::jit::Module module("Probe");
  module.define(source);
  return module;
}

std::string capture_error(const torch::jit::Module& module) {
  try {
    capture(module);
  } catch (const Error& error) {
    return error.what();
  }
  return "captured without error";
}

TEST(ScriptFeatures, SizeOfSameIndexBecomesZero) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    y = x.reshape(x.size(0), 4, -1)
    return y.view(y.size(0), -1)
)"));
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"reshape", "reshape"}));
  EXPECT_EQ(graph.nodes()[0].attrs.ints("shape"), (std::vector<int64_t>{0, 4, -1}));
  EXPECT_EQ(graph.nodes()[1].attrs.ints("shape"), (std::vector<int64_t>{0, -1}));
}

// Any other run-time size: the generic view with its sizes computed when the model runs.
TEST(ScriptFeatures, SizeOfAnotherIndexIsAGenericView) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    return x.view(x.size(1), -1)
)"));
  ASSERT_FALSE(graph.nodes().empty());
  const ir::Node& view = graph.nodes().back();
  EXPECT_EQ(view.op, ir::Op::torch_op) << ir::to_string(graph);
  EXPECT_EQ(view.attrs.s("schema"), "aten::reshape");  // views run as reshape
  int sizes = 0;
  for (const ir::Node& node : graph.nodes()) {
    sizes += node.op == ir::Op::torch_op && node.attrs.s("schema") == "aten::size.int";
  }
  EXPECT_EQ(sizes, 1) << ir::to_string(graph);
}

TEST(ScriptFeatures, ConstantLoopsUnroll) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    for i in range(3):
        x = x * 2.0
    return x
)"));
  EXPECT_EQ(op_sequence(graph), (std::vector<std::string>{"mul", "mul", "mul"}));
}

TEST(ScriptFeatures, ListsBuiltWithAppendFeedCat) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    parts = []
    for k in range(2):
        parts.append(torch.sigmoid(x))
    parts.append(x)
    return torch.cat(parts, 1)
)"));
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"sigmoid", "sigmoid", "cat"}));
  EXPECT_EQ(graph.nodes()[2].inputs,
            (std::vector<ir::ValueId>{graph.nodes()[0].outputs[0], graph.nodes()[1].outputs[0],
                                      graph.inputs()[0]}));
}

TEST(ScriptFeatures, InPlaceOpsUpdateLaterReads) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x, y):
    z = torch.relu(x)
    torch.dropout_(z, 0.1, False)
    z.add_(y)
    return z.contiguous()
)"));
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"relu", "dropout", "add"}));
  EXPECT_EQ(graph.nodes()[2].inputs,
            (std::vector<ir::ValueId>{graph.nodes()[1].outputs[0], graph.inputs()[1]}));
  EXPECT_EQ(graph.outputs(), graph.nodes()[2].outputs);
  EXPECT_EQ(graph.inputs().size(), 2u);
}

TEST(ScriptFeatures, ScalarArithmeticAndAlpha) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x, y):
    return torch.add(x, y, alpha=2.0) + 1, torch.sub(x, y), 3.0 * x
)"));
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"add", "add", "sub", "mul"}));
  EXPECT_DOUBLE_EQ(graph.nodes()[0].attrs.f("alpha"), 2.0);
  EXPECT_DOUBLE_EQ(graph.nodes()[1].attrs.f("scalar"), 1.0);
  EXPECT_FALSE(graph.nodes()[2].attrs.has("alpha"));
  EXPECT_DOUBLE_EQ(graph.nodes()[3].attrs.f("scalar"), 3.0);
  EXPECT_EQ(graph.outputs().size(), 3u);
}

TEST(ScriptFeatures, DataDependentBranchIsAnError) {
  const std::string message = capture_error(scripted(R"(
def forward(self, x):
    if bool(x.sum() > 0):
        return torch.relu(x)
    return x
)"));
  EXPECT_NE(message.find("data-dependent control flow"), std::string::npos) << message;
  EXPECT_NE(message.find("in the root module (Probe)"), std::string::npos) << message;
  EXPECT_NE(message.find("move this code into a submodule"), std::string::npos) << message;
}

TEST(ScriptFeatures, BranchOnAnInputCheckFollowsTheWorkingPath) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    assert x.dim() == 4, "expected 4-D input"
    return torch.sigmoid(x)
)"));
  EXPECT_EQ(op_sequence(graph), (std::vector<std::string>{"sigmoid"}));
}

TEST(ScriptFeatures, BranchOnARuntimeSizeIsAnError) {
  const std::string message = capture_error(scripted(R"(
def forward(self, x):
    if x.size(0) > 1:
        x = torch.tanh(x)
    return x
)"));
  EXPECT_NE(message.find("data-dependent control flow"), std::string::npos) << message;
}

TEST(ScriptFeatures, ModuleAttributesAndTrainingFlagFold) {
  torch::jit::Module module("Probe");
  module.register_attribute("training", c10::BoolType::get(), true);
  module.register_attribute("slope", c10::FloatType::get(), 0.25);
  module.define(R"(
def forward(self, x):
    if self.training:
        x = torch.dropout(x, 0.5, self.training)
    return torch.leaky_relu(x, self.slope)
)");
  module.train();
  EXPECT_EQ(op_sequence(capture(module)), (std::vector<std::string>{"dropout", "leaky_relu"}));
  module.eval();
  const ir::Graph graph = capture(module);
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"leaky_relu"}));
  EXPECT_DOUBLE_EQ(graph.nodes()[0].attrs.f("negative_slope"), 0.25);
}

// A parameter used as a value is a model_tensor node feeding the op (it keeps training).
TEST(ScriptFeatures, ParameterUsedAsValueIsAModelTensorNode) {
  torch::jit::Module module("Probe");
  module.register_parameter("scale", torch::ones({4}), false);
  module.define(R"(
def forward(self, x):
    return x * self.scale
)");
  const ir::Graph graph = capture(module);
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"model_tensor", "mul"}))
      << ir::to_string(graph);
  EXPECT_EQ(graph.nodes()[0].attrs.s("tensor"), "scale");
  EXPECT_EQ(graph.nodes()[1].inputs[1], graph.nodes()[0].outputs[0]);
}

// Ops without a linquant rule for these arguments are generic ops with constant arguments.
TEST(ScriptFeatures, HardtanhOutsideReLU6RangeIsAGenericOp) {
  const ir::Graph graph = capture(scripted(R"(
def forward(self, x):
    return torch.hardtanh(x, -1.0, 1.0)
)"));
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"constant", "constant", "torch_op"}))
      << ir::to_string(graph);
  EXPECT_EQ(graph.nodes()[2].attrs.s("schema"), "aten::hardtanh");
  EXPECT_DOUBLE_EQ(graph.nodes()[0].attrs.constant("value").toDouble(), -1.0);
}

// torch.nn leaves whose forward returns the input (Identity, or Dropout in a model saved
// without it) still become nodes of their module.
TEST(ScriptFeatures, EmptyLeafModulesKeepTheirNode) {
  torch::jit::Module identity("__torch__.torch.nn.modules.linear.Identity");
  identity.define("def forward(self, x):\n    return x\n");
  torch::jit::Module dropout("__torch__.torch.nn.modules.dropout.Dropout");
  dropout.register_attribute("p", c10::FloatType::get(), 0.25);
  dropout.define("def forward(self, x):\n    return x\n");
  torch::jit::Module model("Net");
  model.register_module("id", identity);
  model.register_module("drop", dropout);
  model.define("def forward(self, x):\n    return self.drop.forward(self.id.forward(x))\n");
  const ir::Graph graph = capture(model);
  ASSERT_EQ(op_sequence(graph), (std::vector<std::string>{"identity", "dropout"}));
  EXPECT_EQ(graph.nodes()[0].name, "id");
  EXPECT_EQ(graph.nodes()[0].scope.module_type, "Identity");
  EXPECT_FALSE(graph.nodes()[0].scope.functional);
  EXPECT_EQ(graph.nodes()[1].name, "drop");
  EXPECT_DOUBLE_EQ(graph.nodes()[1].attrs.f("p"), 0.25);
  EXPECT_EQ(graph.outputs(), graph.nodes()[1].outputs);
}

TEST(ScriptFeatures, NonTensorArgumentsAreRejected) {
  try {
    capture(scripted(R"(
def forward(self, x, n: int):
    return x
)"));
    ADD_FAILURE() << "captured";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("tensor inputs only"), std::string::npos);
  }
}

}  // namespace
}  // namespace linquant::frontend
