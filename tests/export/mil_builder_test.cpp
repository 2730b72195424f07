// ProgramBuilder output, inspected through the protobuf it serializes.
#include "linquant/export/coreml/mil_builder.h"

#include <gtest/gtest.h>

#include "Model.pb.h"
#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/model_spec.h"

namespace linquant::coreml {
namespace {

namespace milspec = ::CoreML::Specification::MILSpec;

TensorType ty(DType dtype, Shape shape) { return TensorType{dtype, std::move(shape)}; }

// The main block of the serialized program.
milspec::Block parse_block(const ProgramBuilder& b) {
  ::CoreML::Specification::Model model;
  EXPECT_TRUE(model.ParseFromString(build_package_contents(b).model));
  const milspec::Function& main = model.mlprogram().functions().at("main");
  return main.block_specializations().at(main.opset());
}

const milspec::Operation& find_op(const milspec::Block& block, const std::string& output) {
  for (const auto& op : block.operations()) {
    if (op.outputs(0).name() == output) return op;
  }
  throw std::runtime_error("no op " + output);
}

// A const of `value` on its own, serialized; returns its "val" attribute.
milspec::Value const_value(const TensorValue& value) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("x", ty(DType::Float32, {1}));
  b.add_const("c", value);
  b.set_outputs({b.add_op("identity", "y", {{"x", x}}, ty(DType::Float32, {1}))});
  return find_op(parse_block(b), "c").attributes().at("val");
}

TEST(ProgramBuilder, ImmediateVsBlobAtTenElements) {
  const milspec::Value nine = const_value(TensorValue::float32({9}, std::vector<float>(9, 1.5f)));
  ASSERT_TRUE(nine.has_immediatevalue());
  EXPECT_EQ(nine.immediatevalue().tensor().floats().values_size(), 9);
  const milspec::Value ten = const_value(TensorValue::float32({10}, std::vector<float>(10, 1.5f)));
  ASSERT_TRUE(ten.has_blobfilevalue());
  EXPECT_EQ(ten.blobfilevalue().filename(), "@model_path/weights/weight.bin");
  EXPECT_EQ(ten.blobfilevalue().offset(), 64u);
  EXPECT_EQ(ten.type().tensortype().datatype(), milspec::FLOAT32);
  EXPECT_EQ(ten.type().tensortype().rank(), 1);
  EXPECT_EQ(ten.type().tensortype().dimensions(0).constant().size(), 10u);
}

milspec::TensorValue immediate(const TensorValue& value) {
  return const_value(value).immediatevalue().tensor();
}

TEST(ProgramBuilder, ImmediateValueMembersFollowCoreMLRules) {
  EXPECT_EQ(immediate(TensorValue::int32({2}, {3, -4})).ints().values(1), -4);
  EXPECT_EQ(immediate(TensorValue::int64({1}, {1LL << 40})).longints().values(0), 1LL << 40);
  EXPECT_TRUE(immediate(TensorValue::scalar_bool(true)).bools().values(0));
  EXPECT_EQ(immediate(TensorValue::scalar_string("custom")).strings().values(0), "custom");
  EXPECT_EQ(immediate(TensorValue::scalar_float16(1.0f)).bytes().values(),
            std::string("\x00\x3C", 2));
  EXPECT_EQ(immediate(TensorValue::int8({2}, {-1, 2})).bytes().values(),
            std::string("\xFF\x02", 2));
  EXPECT_EQ(immediate(TensorValue::scalar_uint8(200)).bytes().values(), std::string("\xC8", 1));
  EXPECT_EQ(immediate(TensorValue::int4({3}, {1, -2, 3})).bytes().values(),
            std::string("\xE1\x03", 2));
  const milspec::Value scalar = const_value(TensorValue::scalar_float32(2.5f));
  EXPECT_EQ(scalar.type().tensortype().rank(), 0);
  EXPECT_EQ(scalar.type().tensortype().dimensions_size(), 0);
  EXPECT_EQ(scalar.immediatevalue().tensor().floats().values(0), 2.5f);
}

TEST(ProgramBuilder, OrdinaryOpsBindConstantsThroughConstOps) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("input.1", ty(DType::Float16, {1, 4}));
  EXPECT_EQ(x.name(), "input_1");
  const Var q = b.add_op("quantize", "quant.0",
                         {{"input", x}, {"scale", TensorValue::scalar_float16(0.5f)},
                          {"output_dtype", TensorValue::scalar_string("int8")}},
                         ty(DType::Int8, {1, 4}));
  EXPECT_EQ(q.name(), "quant_0");
  b.set_outputs({b.add_op("dequantize", "out",
                          {{"input", q}, {"scale", TensorValue::scalar_float16(0.5f)}},
                          ty(DType::Float16, {1, 4}))});
  EXPECT_EQ(b.op_types(),
            (std::vector<std::string>{"const", "const", "quantize", "const", "dequantize"}));

  const milspec::Block block = parse_block(b);
  const milspec::Operation& op = find_op(block, "quant_0");
  EXPECT_EQ(op.type(), "quantize");
  ASSERT_EQ(op.attributes().size(), 1u);  // only "name" on ordinary ops
  EXPECT_EQ(op.attributes().at("name").immediatevalue().tensor().strings().values(0), "quant_0");
  EXPECT_EQ(op.inputs().at("input").arguments(0).name(), "input_1");
  EXPECT_EQ(op.inputs().at("scale").arguments(0).name(), "quant_0_scale");
  EXPECT_EQ(op.inputs().at("output_dtype").arguments(0).name(), "quant_0_output_dtype");
  EXPECT_EQ(op.outputs(0).type().tensortype().datatype(), milspec::INT8);
  EXPECT_EQ(block.operations(0).type(), "const");
  EXPECT_EQ(block.operations(0).outputs(0).name(), "quant_0_scale");
  EXPECT_EQ(block.outputs(0), "out");
}

TEST(ProgramBuilder, NamesStayUniqueAfterSanitizing) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("x", ty(DType::Float32, {2}));
  const Var r1 = b.add_op("relu", "block.relu", {{"x", x}}, ty(DType::Float32, {2}));
  const Var r2 = b.add_op("relu", "block_relu", {{"x", r1}}, ty(DType::Float32, {2}));
  const Var r3 = b.add_op("relu", "x", {{"x", r2}}, ty(DType::Float32, {2}));
  EXPECT_EQ(r1.name(), "block_relu");
  EXPECT_EQ(r2.name(), "block_relu_1");
  EXPECT_EQ(r3.name(), "x_1");
  const auto outs = b.add_multi_output_op(
      "split", "split",
      {{"x", r3},
       {"num_splits", TensorValue::scalar_int32(2)},
       {"axis", TensorValue::scalar_int32(0)}},
      {ty(DType::Float32, {1}), ty(DType::Float32, {1})});
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0].name(), "split_0");
  EXPECT_EQ(outs[1].name(), "split_1");
}

TEST(ProgramBuilder, VariadicParametersBindSeveralNames) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("x", ty(DType::Float32, {1, 2}));
  const Var y = b.add_input("y", ty(DType::Float32, {1, 3}));
  const Var cat = b.add_op("concat", "cat",
                           {{"values", std::vector<Var>{x, y}},
                            {"axis", TensorValue::scalar_int32(1)},
                            {"interleave", TensorValue::scalar_bool(false)}},
                           ty(DType::Float32, {1, 5}));
  b.set_outputs({cat});
  const milspec::Block block = parse_block(b);
  const milspec::Argument& values = find_op(block, "cat").inputs().at("values");
  ASSERT_EQ(values.arguments_size(), 2);
  EXPECT_EQ(values.arguments(0).name(), "x");
  EXPECT_EQ(values.arguments(1).name(), "y");
}

TEST(ProgramBuilder, ConstexprParamsAreAttributesUpToIOS17) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("x", ty(DType::Float16, {1, 3}));
  const TensorValue data = TensorValue::int8({4, 3}, std::vector<std::int8_t>(12, 1));
  const Var w = b.add_constexpr("constexpr_affine_dequantize", "w",
                                {{"quantized_data", data},
                                 {"zero_point", TensorValue::int8({4}, {0, 0, 0, 0})},
                                 {"scale", TensorValue::float16({4}, {1, 2, 3, 4})},
                                 {"axis", TensorValue::scalar_int32(0)}},
                                ty(DType::Float16, {4, 3}));
  b.set_outputs({b.add_op("linear", "y", {{"x", x}, {"weight", w}}, ty(DType::Float16, {1, 4}))});
  const milspec::Block block = parse_block(b);
  const milspec::Operation& op = find_op(block, "w");
  EXPECT_TRUE(op.inputs().empty());
  EXPECT_EQ(op.attributes().size(), 5u);
  EXPECT_TRUE(op.attributes().at("quantized_data").has_blobfilevalue());
  EXPECT_EQ(op.attributes().at("zero_point").immediatevalue().tensor().bytes().values(),
            std::string(4, '\0'));
  EXPECT_EQ(op.attributes().at("axis").immediatevalue().tensor().ints().values(0), 0);
  EXPECT_EQ(b.op_types(), (std::vector<std::string>{"constexpr_affine_dequantize", "linear"}));
}

TEST(ProgramBuilder, ConstexprParamsAreValueInputsFromIOS18) {
  ProgramBuilder b(Target::iOS18);
  const Var x = b.add_input("x", ty(DType::Float16, {1, 3}));
  const TensorValue data = TensorValue::int4({4, 3}, std::vector<std::int8_t>(12, -1));
  const Var w = b.add_constexpr("constexpr_blockwise_shift_scale", "w",
                                {{"data", data},
                                 {"scale", TensorValue::float16({4, 1}, {1, 2, 3, 4})}},
                                ty(DType::Float16, {4, 3}));
  const Var chained =
      b.add_constexpr("constexpr_other", "w2", {{"input", w}}, ty(DType::Float16, {4, 3}));
  b.set_outputs(
      {b.add_op("linear", "y", {{"x", x}, {"weight", chained}}, ty(DType::Float16, {1, 4}))});
  const milspec::Block block = parse_block(b);
  const milspec::Operation& op = find_op(block, "w");
  EXPECT_EQ(op.attributes().size(), 1u);
  const milspec::Value& data_value = op.inputs().at("data").arguments(0).value();
  ASSERT_TRUE(data_value.has_blobfilevalue());
  EXPECT_EQ(data_value.type().tensortype().datatype(), milspec::INT4);
  const milspec::Value& scale = op.inputs().at("scale").arguments(0).value();
  EXPECT_EQ(scale.immediatevalue().tensor().bytes().values().size(), 8u);
  EXPECT_EQ(find_op(block, "w2").inputs().at("input").arguments(0).name(), "w");
  // int4 payload: 12 elements of -1 -> six 0xFF bytes.
  EXPECT_EQ(b.weights().bytes().size(), 128u + 6u);
}

TEST(ProgramBuilder, RejectsMisuse) {
  ProgramBuilder b(Target::iOS15);
  const Var x = b.add_input("x", ty(DType::Float32, {2}));
  EXPECT_THROW(b.add_constexpr("constexpr_affine_dequantize", "w", {}, ty(DType::Float32, {2})),
               ExportError);
  EXPECT_THROW(b.add_op("const", "c", {}, ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.add_op("relu", "r", {{"x", x}, {"x", x}}, ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.add_op("relu", "r", {{"bad name", x}}, ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.add_op("bad.type", "r", {{"x", x}}, ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.add_input("s", ty(DType::Float32, {})), ExportError);

  ProgramBuilder other(Target::iOS15);
  const Var foreign = other.add_input("foreign", ty(DType::Float32, {2}));
  EXPECT_THROW(b.add_op("relu", "r", {{"x", foreign}}, ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.set_outputs({x}), ExportError);  // an input cannot also be an output

  const Var r = b.add_op("relu", "r", {{"x", x}}, ty(DType::Float32, {2}));
  EXPECT_THROW(b.add_input("late", ty(DType::Float32, {2})), ExportError);
  EXPECT_THROW(b.set_outputs({r, r}), ExportError);
  b.set_outputs({r});
  EXPECT_THROW(b.set_outputs({r}), ExportError);
  EXPECT_THROW(b.add_op("relu", "r2", {{"x", r}}, ty(DType::Float32, {2})), ExportError);

  ProgramBuilder ios17(Target::iOS17);
  const Var y = ios17.add_input("y", ty(DType::Float32, {2}));
  EXPECT_THROW(ios17.add_constexpr("constexpr_affine_dequantize", "w", {{"quantized_data", y}},
                                   ty(DType::Float32, {2})),
               ExportError);  // attributes must be values before iOS18
  ProgramBuilder ios18(Target::iOS18);
  const Var z = ios18.add_input("z", ty(DType::Float32, {2}));
  EXPECT_THROW(ios18.add_constexpr("constexpr_blockwise_shift_scale", "w", {{"data", z}},
                                   ty(DType::Float32, {2})),
               ExportError);  // only constexpr outputs may be chained
}

}  // namespace
}  // namespace linquant::coreml
