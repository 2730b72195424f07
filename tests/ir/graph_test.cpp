// Graph building, queries, printing and the verifier's error messages.
#include "linquant/ir/graph.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "linquant/common/error.h"

namespace linquant::ir {
namespace {

Node make(Op op, std::vector<ValueId> inputs, const std::string& module = "",
          const std::string& type = "") {
  Node node;
  node.op = op;
  node.inputs = std::move(inputs);
  node.scope.module_name = module;
  node.scope.module_type = type;
  return node;
}

Graph conv_relu_graph() {
  Graph g;
  const ValueId x = g.add_input("x");
  g.add_tensor("0.weight", at::ones({4, 1, 3, 3}), true);
  Node conv = make(Op::conv, {x}, "0", "Conv2d");
  conv.attrs.set("weight", std::string("0.weight"));
  conv.attrs.set("stride", std::vector<int64_t>{1, 1});
  conv.attrs.set("padding", std::vector<int64_t>{1, 1});
  conv.attrs.set("dilation", std::vector<int64_t>{1, 1});
  conv.attrs.set("groups", int64_t{1});
  const size_t c = g.add_node(conv);
  const size_t r = g.add_node(make(Op::relu, {g.nodes()[c].outputs[0]}, "1", "ReLU"));
  g.set_outputs({g.nodes()[r].outputs[0]});
  return g;
}

TEST(Graph, BuildQueryAndPrint) {
  Graph g = conv_relu_graph();
  verify(g);
  EXPECT_EQ(g.nodes()[0].name, "conv");
  EXPECT_EQ(g.producer(g.nodes()[1].inputs[0]), std::optional<size_t>(0));
  EXPECT_EQ(g.consumers(g.nodes()[0].outputs[0]), std::vector<size_t>{1});
  EXPECT_TRUE(g.is_graph_output(g.nodes()[1].outputs[0]));
  EXPECT_EQ(to_string(g),
            "graph(%x)\n"
            "  %conv = conv[dilation=[1, 1], groups=1, padding=[1, 1], stride=[1, 1], "
            "weight=\"0.weight\"](%x)  # 0: Conv2d\n"
            "  %relu = relu(%conv)  # 1: ReLU\n"
            "  return (%relu)\n");
}

TEST(Graph, InsertAndReplaceUses) {
  Graph g = conv_relu_graph();
  const ValueId conv_out = g.nodes()[0].outputs[0];
  Node fq = make(Op::fake_quantize, {conv_out});
  fq.attrs.set("quantizer", std::string("activation_post_process_0"));
  g.add_quantizer("activation_post_process_0", QuantizerSpec{});
  g.insert_node(1, fq);
  g.replace_uses(conv_out, g.nodes()[1].outputs[0], 2);
  verify(g);
  EXPECT_EQ(g.nodes()[2].inputs[0], g.nodes()[1].outputs[0]);
  EXPECT_EQ(g.unique_node_name("conv"), "conv_1");
}

void expect_invalid(const Graph& g, const std::string& fragment) {
  try {
    verify(g);
    FAIL() << "expected verify() to fail with: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Graph, VerifierNamesTheProblem) {
  {
    Graph g = conv_relu_graph();
    g.nodes()[0].attrs.erase("groups");
    expect_invalid(g, "node 'conv' (conv): is missing attribute 'groups'");
  }
  {
    Graph g = conv_relu_graph();
    g.nodes()[0].attrs.set("weight", std::string("nope.weight"));
    expect_invalid(g, "names the unknown tensor 'nope.weight'");
  }
  {
    Graph g = conv_relu_graph();
    std::swap(g.nodes()[0], g.nodes()[1]);
    expect_invalid(g, "reads %conv before it is defined");
  }
  {
    Graph g = conv_relu_graph();
    g.nodes()[1].inputs.push_back(g.inputs()[0]);
    expect_invalid(g, "expects 1 inputs, has 2");
  }
  {
    Graph g = conv_relu_graph();
    g.nodes()[1].name = "conv";
    expect_invalid(g, "the node name is used twice");
  }
  {
    Graph g = conv_relu_graph();
    g.add_node(make(Op::add, {g.inputs()[0]}));
    expect_invalid(g, "needs two tensor inputs");
  }
}

TEST(Attributes, TypedAccessNamesTheKey) {
  Attributes a;
  a.set("dim", int64_t{1});
  EXPECT_EQ(a.i("dim"), 1);
  EXPECT_EQ(a.f("eps", 1e-5), 1e-5);
  EXPECT_THROW(a.s("dim"), Error);
  try {
    a.ints("kernel_size");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "node attribute 'kernel_size' is missing");
  }
  EXPECT_EQ(parse_op("max_pool"), Op::max_pool);
  EXPECT_EQ(to_string(Op::adaptive_avg_pool), "adaptive_avg_pool");
  EXPECT_FALSE(parse_op("conv3d").has_value());
  EXPECT_EQ(op_info(Op::sigmoid).output, OutputQuantization::fixed_qparams);
}

}  // namespace
}  // namespace linquant::ir
