// build_program: the MIL program save() writes, checked op by op: coremltools' op sequence
// for quantized conv-bn-relu (reference 6.5), zero-point rewrites (6.3), weight storage types
// per target, the integer reshape only where parameters match (Appendix C item 1), names.
#include "linquant/export/coreml/export_error.h"
#include "test_graphs.h"

namespace linquant::coreml::testing {
namespace {

using Seq = std::vector<std::string>;

TEST(BuildProgram, ConvBnReluMatchesCoremltoolsProgram) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  const ProgramBuilder program = build_program(model->graph());
  EXPECT_EQ(op_sequence(program),
            (Seq{"constexpr_affine_dequantize", "quantize", "dequantize", "conv", "relu",
                 "quantize", "dequantize"}));
  const auto spec = parsed(program);
  EXPECT_EQ(spec.specificationversion(), 8);
  const milspec::Block& block = main_block(spec);
  const auto quantize = ops_of_type(block, "quantize");
  ASSERT_EQ(quantize.size(), 2u);
  // Symmetric quint8 input (zero point 128) -> int8 without zero point; affine after relu
  // (zero point 0) -> uint8 without zero point.
  EXPECT_EQ(output_dtype(*quantize[0]), milspec::INT8);
  EXPECT_EQ(output_dtype(*quantize[1]), milspec::UINT8);
  for (const auto* op : quantize) EXPECT_EQ(op->inputs().count("zero_point"), 0u);
  for (const auto* op : ops_of_type(block, "dequantize")) {
    EXPECT_EQ(op->inputs().count("zero_point"), 0u);
  }

  const auto* weight = ops_of_type(block, "constexpr_affine_dequantize").at(0);
  auto attribute_dtype = [&](const std::string& key) {
    return weight->attributes().at(key).type().tensortype().datatype();
  };
  EXPECT_EQ(attribute_dtype("quantized_data"), milspec::INT8);
  EXPECT_EQ(attribute_dtype("zero_point"), milspec::INT8);
  EXPECT_EQ(attribute_dtype("scale"), milspec::FLOAT16);
  EXPECT_EQ(weight->attributes().at("axis").immediatevalue().tensor().ints().values(0), 0);

  const auto* conv = ops_of_type(block, "conv").at(0);
  EXPECT_EQ(bound_const(block, *conv, "pad_type").immediatevalue().tensor().strings().values(0),
            "custom");
  EXPECT_EQ(bound_const(block, *conv, "pad").immediatevalue().tensor().ints().values_size(), 4);
  // fp16 model interface for fp16 precision.
  EXPECT_EQ(spec.description().input(0).type().multiarraytype().datatype(),
            ::CoreML::Specification::ArrayFeatureType::FLOAT16);
}

TEST(BuildProgram, Fp32PrecisionKeepsFp32ScalesAndInterface) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  SaveOptions options;
  options.precision = ComputePrecision::Float32;
  const auto spec = parsed(build_program(model->graph(), options));
  const milspec::Block& block = main_block(spec);
  const auto* weight = ops_of_type(block, "constexpr_affine_dequantize").at(0);
  EXPECT_EQ(weight->attributes().at("scale").type().tensortype().datatype(), milspec::FLOAT32);
  EXPECT_EQ(output_dtype(*weight), milspec::FLOAT32);
  EXPECT_EQ(spec.description().output(0).type().multiarraytype().datatype(),
            ::CoreML::Specification::ArrayFeatureType::FLOAT32);
}

TEST(BuildProgram, Ios18UsesBlockwiseShiftScaleWithRankMatchedScale) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  SaveOptions options;
  options.target = Target::iOS18;
  const ProgramBuilder program = build_program(model->graph(), options);
  EXPECT_EQ(op_sequence(program).front(), "constexpr_blockwise_shift_scale");
  const auto spec = parsed(program);
  EXPECT_EQ(spec.specificationversion(), 9);
  const auto* weight = ops_of_type(main_block(spec), "constexpr_blockwise_shift_scale").at(0);
  const auto& scale = weight->inputs().at("scale").arguments(0).value().type().tensortype();
  ASSERT_EQ(scale.dimensions_size(), 4);
  EXPECT_EQ(scale.dimensions(0).constant().size(), 8u);
  EXPECT_EQ(scale.dimensions(1).constant().size(), 1u);
  // Symmetric weights: no offset.
  EXPECT_EQ(weight->inputs().count("offset"), 0u);
  EXPECT_EQ(weight->inputs().at("data").arguments(0).value().type().tensortype().datatype(),
            milspec::INT8);
}

TEST(BuildProgram, FourBitWeightsBecomeInt4OnIos18) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8}, four_bit_config());
  SaveOptions options;
  options.target = Target::iOS18;
  const auto spec = parsed(build_program(model->graph(), options));
  const auto* weight = ops_of_type(main_block(spec), "constexpr_blockwise_shift_scale").at(0);
  EXPECT_EQ(weight->inputs().at("data").arguments(0).value().type().tensortype().datatype(),
            milspec::INT4);
}

TEST(BuildProgram, TutorialNetReshapesTheIntegerTensorBetweenMatchingQuantizers) {
  const GraphModule model = finalized(tutorial_net(), {2, 1, 28, 28});
  const ProgramBuilder program = build_program(model->graph());
  // The flatten sits between two quantizers sharing one observer: it runs on the int8 tensor.
  EXPECT_EQ(op_sequence(program),
            (Seq{"constexpr_affine_dequantize", "constexpr_affine_dequantize", "quantize",
                 "dequantize", "conv", "relu", "quantize", "dequantize", "max_pool", "quantize",
                 "reshape", "dequantize", "linear", "reduce_log_sum_exp", "sub", "quantize",
                 "dequantize"}));
  const auto spec = parsed(program);
  const auto* reshape = ops_of_type(main_block(spec), "reshape").at(0);
  EXPECT_EQ(output_dtype(*reshape), milspec::UINT8);
}

// dequantize(s1) -> reshape -> quantize(s2) must stay two pairs when s1 != s2 (a sigmoid's
// fixed [0, 1] range followed by a new symmetric quantizer, Appendix C item 1).
TEST(BuildProgram, MismatchedQuantizersAroundReshapeStayFloat) {
  for (const bool match : {true, false}) {
    HandGraph g;
    const auto x = g.input({1, 4, 2, 2});
    auto h = g.qdq(g.node(ir::Op::sigmoid, {g.qdq(x, 0.05, 128)}, {1, 4, 2, 2}), 1.0 / 256, 0);
    h = g.node(ir::Op::flatten, {h}, {1, 16},
               attrs({{"start_dim", int64_t{1}}, {"end_dim", int64_t{-1}}}));
    h = match ? g.qdq(h, 1.0 / 256, 0) : g.qdq(h, 0.0078, 128);
    const ProgramBuilder program = build_program(g.finish({h}));
    const Seq tail = match ? Seq{"sigmoid", "quantize", "reshape", "dequantize"}
                           : Seq{"sigmoid", "quantize", "dequantize", "reshape", "quantize",
                                 "dequantize"};
    const Seq ops = op_sequence(program);
    EXPECT_EQ(Seq(ops.begin() + 2, ops.end()), tail) << "match=" << match;
  }
}

TEST(BuildProgram, ZeroPointRewrites) {
  struct Case { int64_t zp, qmin, qmax; milspec::DataType dtype; bool has_zp; };
  const Case cases[] = {{128, 0, 255, milspec::INT8, false},
                        {0, 0, 255, milspec::UINT8, false},
                        {37, 0, 255, milspec::UINT8, true},
                        {-128, -128, 127, milspec::UINT8, false},
                        {0, -128, 127, milspec::INT8, false},
                        {-3, -128, 127, milspec::INT8, true}};
  for (const Case& c : cases) {
    HandGraph g;
    const auto x = g.input({2, 3});
    const auto y = g.qdq(x, 0.02, c.zp, c.qmin, c.qmax);
    const auto spec = parsed(build_program(g.finish({y})));
    const auto* q = ops_of_type(main_block(spec), "quantize").at(0);
    EXPECT_EQ(output_dtype(*q), c.dtype) << "zp " << c.zp;
    EXPECT_EQ(q->inputs().count("zero_point"), c.has_zp ? 1u : 0u) << "zp " << c.zp;
  }
}

TEST(BuildProgram, DequantizeQuantizePairWithSameParametersIsElided) {
  HandGraph g;
  const auto x = g.input({2, 3});
  auto h = g.qdq(x, 0.02, 128);
  h = g.node(ir::Op::dropout, {h}, {2, 3}, attrs({{"p", 0.5}}));
  h = g.qdq(h, 0.02, 128, 0, 255, "again");
  h = g.node(ir::Op::relu, {h}, {2, 3}, {}, "out");
  EXPECT_EQ(op_sequence(build_program(g.finish({h}))), (Seq{"quantize", "dequantize", "relu"}));
}

TEST(BuildProgram, NamesComeFromTheGraphOrTheOptions) {
  HandGraph g;
  const auto x = g.input({2, 3}, "x.1");
  const auto y = g.node(ir::Op::relu, {x}, {2, 3}, {}, "act.out");
  const auto z = g.node(ir::Op::identity, {y}, {2, 3}, {}, "ident");
  const ir::Graph graph = g.finish({y, z, x});
  const ProgramBuilder defaults = build_program(graph);
  EXPECT_EQ(defaults.inputs().at(0).name(), "x_1");
  EXPECT_EQ(defaults.outputs().at(0).name(), "act_out");
  // A vanished op (identity) and an input listed as output get identity ops of their own.
  EXPECT_EQ(defaults.outputs().at(1).name(), "ident");
  EXPECT_EQ(defaults.outputs().size(), 3u);

  SaveOptions options;
  options.input_names = {"image"};
  options.output_names = {"act_out_renamed", "b", "c"};
  const ProgramBuilder named = build_program(graph, options);
  EXPECT_EQ(named.inputs().at(0).name(), "image");
  EXPECT_EQ(named.outputs().at(0).name(), "act_out_renamed");
  EXPECT_EQ(named.outputs().at(2).name(), "c");
}

TEST(BuildProgram, HardswishAndFriendsMapLikeCoremltools) {
  HandGraph g;
  const auto x = g.input({1, 4});
  auto h = g.node(ir::Op::hardswish, {x}, {1, 4});
  h = g.node(ir::Op::hardsigmoid, {h}, {1, 4});
  h = g.node(ir::Op::relu6, {h}, {1, 4});
  h = g.node(ir::Op::gelu, {h}, {1, 4}, attrs({{"approximate", std::string("tanh")}}));
  h = g.node(ir::Op::div, {h}, {1, 4}, attrs({{"scalar", 2.0}}));
  h = g.node(ir::Op::sub, {h}, {1, 4}, attrs({{"scalar", 1.0}, {"scalar_first", true}}));
  EXPECT_EQ(op_sequence(build_program(g.finish({h}))),
            (Seq{"thresholded_relu", "sigmoid_hard", "mul", "sigmoid_hard", "clip", "gelu",
                 "real_div", "sub"}));
}

TEST(BuildProgram, Fp16BeforeIos16CastsAtTheInterface) {
  HandGraph g;
  const auto x = g.input({1, 4});
  const auto y = g.node(ir::Op::relu, {x}, {1, 4});
  SaveOptions options;
  options.target = Target::iOS15;
  const ProgramBuilder program = build_program(g.finish({y}), options);
  EXPECT_EQ(op_sequence(program), (Seq{"cast", "relu", "cast"}));
  EXPECT_EQ(program.inputs().at(0).type().dtype, DType::Float32);
  EXPECT_EQ(program.outputs().at(0).type().dtype, DType::Float32);
}

// An activation range beyond fp16's largest number (scale 300 x 255 = 76500) has no fp16
// program that computes it: refused with the fix; fp32 holds it.
TEST(BuildProgram, ActivationRangeBeyondFp16IsRefusedUnlessFp32) {
  HandGraph g;
  const auto x = g.input({1, 4});
  const ir::Graph graph = g.finish({g.qdq(x, 300.0, 0, 0, 255, "wide")});
  try {
    build_program(graph);
    ADD_FAILURE() << "an fp16 program was built";
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit fp16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Float32"), std::string::npos) << e.what();
  }
  SaveOptions fp32;
  fp32.precision = ComputePrecision::Float32;
  EXPECT_EQ(op_sequence(build_program(graph, fp32)), (Seq{"quantize", "dequantize"}));
}

// einsum "bhid,bhjd->bhij" is a batched x @ y^T: y is transposed to [b, h, d, j], one matmul,
// no reshape (each side has one free and one contracted subscript), and an identity naming the
// output. Adaptive pooling 5 -> 3 (windows [0,2), [1,4), [3,5)) multiplies by a 3x5 matrix.
TEST(BuildProgram, EinsumAndUnevenAdaptivePoolingBecomeMatmuls) {
  HandGraph g;
  const auto q = g.input({1, 2, 5, 4}, "q");
  const auto k = g.input({1, 2, 5, 4}, "k");
  const auto e = g.node(ir::Op::einsum, {q, k}, {1, 2, 5, 5},
                        attrs({{"equation", std::string("bhid,bhjd->bhij")}}), "scores");
  const auto p = g.node(ir::Op::adaptive_avg_pool, {e}, {1, 2, 5, 3},
                        attrs({{"output_size", std::vector<int64_t>{3}}}), "pooled");
  EXPECT_EQ(op_sequence(build_program(g.finish({p}))),
            (Seq{"transpose", "matmul", "identity", "matmul"}));
}

}  // namespace
}  // namespace linquant::coreml::testing
