// Failures name the node and the problem: missing tensors, quantizers and callables at
// construction, ops the interpreter cannot run, and inputs of the wrong count.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "linquant/common/error.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

template <typename F>
void expect_error(F&& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected linquant::Error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

ir::Graph conv_graph() {
  ir::Graph g;
  const ValueId v = add_conv(g, g.add_input("x"), "conv", at::randn({2, 1, 3, 3}), at::Tensor(),
                             {1, 1}, {0, 0});
  g.set_outputs({v});
  return g;
}

TEST(Errors, MissingFusedBatchNormTensorNamesTheNode) {
  ir::Graph g = conv_graph();
  g.add_tensor("bn.running_mean", at::zeros({2}), false);
  fuse_bn(g, "conv", "bn", 1e-5, 0.1, /*affine=*/false);
  expect_error([&] { GraphModule gm(g); },
               "node 'conv' (conv): attribute 'bn_running_var' names the unknown tensor "
               "'bn.running_var'");
}

TEST(Errors, MissingCallableAndQuantizerAreFoundAtConstruction) {
  ir::Graph g;
  g.set_outputs({add(g, Op::float_module, {g.add_input("x")}, {{"module", S("kept")}}, "kept",
                     "Custom", "kept")});
  expect_error([&] { GraphModule gm(g); },
               "node 'kept' (float_module): no callable is registered for float module 'kept'");
  expect_error([] { GraphModule(conv_graph())->quantizer("nope"); },
               "no quantizer named 'nope'");
}

TEST(Errors, OpTheInterpreterCannotRun) {
  ir::Graph g = conv_graph();
  g.nodes()[0].attrs.set("spatial_dims", int64_t{4});
  GraphModule gm(std::move(g));
  expect_error([&] { gm->forward(at::randn({1, 1, 5, 5})); },
               "node 'conv' (conv): cannot run a convolution with 4 spatial dimensions");
  ir::Graph padded = conv_graph();
  padded.nodes()[0].attrs.set("padding_mode", std::string("reflect"));
  expect_error([&] { GraphModule(std::move(padded))->forward(at::randn({1, 1, 5, 5})); },
               "node 'conv' (conv): padding_mode 'reflect' is not supported");
}

TEST(Errors, AtenFailuresAreReportedWithTheNode) {
  GraphModule gm(conv_graph());
  expect_error([&] { gm->forward(at::randn({1, 3, 5, 5})); }, "node 'conv' (conv): ");
}

TEST(Errors, WrongInputCount) {
  GraphModule gm(conv_graph());
  expect_error([&] { gm->forward(std::vector<at::Tensor>{}); },
               "the graph takes 1 inputs (%x), got 0");
  ir::Graph two;
  const ValueId a = two.add_input("a");
  const ValueId b = two.add_input("b");
  two.set_outputs({add(two, Op::add, {a, b})});
  expect_error([&] { GraphModule(std::move(two))->forward(at::randn({2})); },
               "needs a graph with one input and one output");
}

TEST(Errors, FreezeQueriesNameTheNode) {
  GraphModule gm(conv_graph());
  expect_error([&] { gm->is_bn_frozen("conv"); }, "node 'conv' has no fused BatchNorm");
  expect_error([&] { gm->is_bn_frozen("missing"); }, "the graph has no node named 'missing'");
}

}  // namespace
}  // namespace linquant
