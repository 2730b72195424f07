// LinearQuantizer's state machine (reference section 2), report (section 1.5) and the
// prepare() contract, on a conv-bn-relu graph.
#include "linquant/quantizer/linear_quantizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../passes/graph_builder.h"
#include "linquant/common/error.h"
#include "linquant/common/warning.h"

namespace linquant {
namespace {

using ir::Op;

ir::Graph conv_bn_relu() {
  testing::GraphBuilder b;
  const auto x = b.input();
  return b.finish({b.op(Op::relu, {b.bn(b.conv(x, "conv"), "bn")}, "relu", "ReLU")});
}

LinearQuantizerConfig with_milestones(Milestones m) {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig().set_milestones(m));
  return config;
}

struct Flags {
  bool observers;
  bool fake_quant;
  bool bn_frozen;
  bool operator==(const Flags& o) const {
    return observers == o.observers && fake_quant == o.fake_quant && bn_frozen == o.bn_frozen;
  }
};

std::ostream& operator<<(std::ostream& out, const Flags& f) {
  return out << "{observers " << f.observers << ", fake_quant " << f.fake_quant << ", bn_frozen "
             << f.bn_frozen << "}";
}

// All quantizers must agree; returns their common state.
Flags flags(const LinearQuantizer& quantizer) {
  const auto all = quantizer.model()->quantizers();
  EXPECT_EQ(all.size(), 3u);
  Flags f{all[0].second->is_observer_enabled(), all[0].second->is_fake_quant_enabled(),
          quantizer.model()->is_bn_frozen("conv")};
  for (const auto& [name, fq] : all) {
    EXPECT_EQ(fq->is_observer_enabled(), f.observers) << name;
    EXPECT_EQ(fq->is_fake_quant_enabled(), f.fake_quant) << name;
  }
  return f;
}

std::vector<at::Tensor> example() { return {at::randn({2, 4, 5, 5})}; }

TEST(LinearQuantizer, MilestonesZeroOneTwoThree) {
  LinearQuantizer quantizer(conv_bn_relu(), with_milestones({0, 1, 2, 3}));
  quantizer.prepare(example());
  EXPECT_EQ(flags(quantizer), (Flags{false, false, false}));
  const std::vector<Flags> expected = {
      {true, false, false}, {true, true, false}, {false, true, false}, {false, true, true}};
  for (const Flags& after : expected) {
    quantizer.step();
    EXPECT_EQ(flags(quantizer), after) << "after step " << quantizer.step_count();
  }
  EXPECT_EQ(quantizer.step_count(), 4);
}

TEST(LinearQuantizer, CalibrationRecipeFiresSeveralMilestonesInOneCall) {
  LinearQuantizer quantizer(conv_bn_relu(), with_milestones({0, 1000, 1000, 0}));
  quantizer.prepare(example());
  quantizer.step();
  EXPECT_EQ(flags(quantizer), (Flags{true, false, true}));
  for (int i = 1; i < 1000; ++i) quantizer.step();
  EXPECT_EQ(flags(quantizer), (Flags{true, false, true}));
  quantizer.step();  // call 1000: fake quant on, then observers off
  EXPECT_EQ(flags(quantizer), (Flags{false, true, true}));
}

TEST(LinearQuantizer, WithoutMilestonesEverythingStaysOn) {
  LinearQuantizer quantizer(conv_bn_relu());
  quantizer.prepare(example());
  EXPECT_EQ(flags(quantizer), (Flags{true, true, false}));
  for (int i = 0; i < 5; ++i) quantizer.step();
  EXPECT_EQ(flags(quantizer), (Flags{true, true, false}));
}

TEST(LinearQuantizer, MisuseWarnsAndDoesNoHarm) {
  LinearQuantizer quantizer(conv_bn_relu(), with_milestones({0, 1, 2, 3}));
  ScopedWarningCapture warnings;
  quantizer.step();
  EXPECT_EQ(quantizer.step_count(), 0);
  EXPECT_NE(warnings.text().find("before prepare()"), std::string::npos);
  GraphModule first = quantizer.prepare(example());
  GraphModule second = quantizer.prepare(example());
  EXPECT_EQ(first.ptr(), second.ptr());
  EXPECT_NE(warnings.text().find("already called"), std::string::npos);
  EXPECT_THROW(LinearQuantizer(conv_bn_relu()).model(), Error);
}

TEST(LinearQuantizer, LearnableAlgorithmGivesLearnableQuantizers) {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig().set_algorithm(Algorithm::learnable));
  LinearQuantizer quantizer(conv_bn_relu(), config);
  GraphModule model = quantizer.prepare(example());
  ASSERT_FALSE(model->quantizers().empty());
  for (auto& [name, fq] : model->quantizers()) EXPECT_TRUE(fq->is_learnable()) << name;
}

TEST(LinearQuantizer, PrepareSharesOrCopiesTheModelTensors) {
  ir::Graph graph = conv_bn_relu();
  const at::Tensor weight = graph.tensor("conv.weight").tensor;
  const at::Tensor running_var = graph.tensor("bn.running_var").tensor.clone();
  {
    LinearQuantizer shared(graph);
    GraphModule model = shared.prepare(example());
    EXPECT_EQ(model->named_parameters()["conv.weight"].unsafeGetTensorImpl(), weight.unsafeGetTensorImpl());
  }
  LinearQuantizer copied(graph);
  GraphModule model = copied.prepare(example(), /*inplace=*/false);
  EXPECT_NE(model->named_parameters()["conv.weight"].unsafeGetTensorImpl(), weight.unsafeGetTensorImpl());
  model->forward(at::randn({8, 4, 5, 5}));  // training mode: updates the copy's statistics only
  EXPECT_TRUE(graph.tensor("bn.running_var").tensor.equal(running_var));
}

TEST(LinearQuantizer, ReportListsEveryQuantizerInCoremltoolsLayout) {
  LinearQuantizer quantizer(conv_bn_relu());
  GraphModule model = quantizer.prepare(example());
  model->forward(at::randn({2, 4, 5, 5}));
  const Report report = quantizer.report();
  ASSERT_EQ(report.rows.size(), 3u);
  EXPECT_EQ(report.rows[0].name, "activation_post_process_0");
  EXPECT_EQ(report.rows[0].qscheme, "symmetric");
  EXPECT_EQ(report.rows[1].name, "conv");
  EXPECT_EQ(report.rows[1].type, "weight");
  EXPECT_EQ(report.rows[1].dtype, "torch.qint8");
  EXPECT_EQ(report.rows[1].qmin, -128);
  EXPECT_EQ(report.rows[1].num_params, 144);
  EXPECT_GT(report.rows[1].error, 0.0);
  EXPECT_LT(report.rows[1].error, 0.05);
  EXPECT_EQ(report.rows[2].qscheme, "affine");
  const std::string text = report.to_string();
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "                     name |       type | device | algorithm |   qscheme | per_channel |        "
            "dtype | qmin | qmax |   error | #params");
  EXPECT_NE(text.find("activation_post_process_0 | activation |    cpu |   vanilla | symmetric |       "
                      "False | torch.quint8 |    0 |  255 |     nan |      -1"),
            std::string::npos)
      << text;
  EXPECT_NE(report.to_json().find("\"num_params\": 144"), std::string::npos);
}

}  // namespace
}  // namespace linquant
