// The Model message around a program: versions, features, metadata, determinism.
#include "linquant/export/coreml/model_spec.h"

#include <gtest/gtest.h>

#include "Model.pb.h"
#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

namespace spec = ::CoreML::Specification;

TensorType ty(DType dtype, Shape shape) { return TensorType{dtype, std::move(shape)}; }

ProgramBuilder relu_program(Target target, DType dtype) {
  ProgramBuilder b(target);
  const Var x = b.add_input("x", ty(dtype, {1, 4}));
  b.set_outputs({b.add_op("relu", "y", {{"x", x}}, ty(dtype, {1, 4}))});
  return b;
}

PackageContents relu_contents(Target target, DType dtype, const ModelInfo& info = {}) {
  return build_package_contents(relu_program(target, dtype), info);
}

spec::Model parse(const PackageContents& contents) {
  spec::Model model;
  EXPECT_TRUE(model.ParseFromString(contents.model));
  return model;
}

TEST(ModelSpec, TargetsSetSpecVersionAndOpset) {
  const struct {
    Target target;
    int version;
    const char* opset;
  } rows[] = {{Target::iOS15, 6, "CoreML5"},
              {Target::iOS16, 7, "CoreML6"},
              {Target::iOS17, 8, "CoreML7"},
              {Target::iOS18, 9, "CoreML8"}};
  for (const auto& row : rows) {
    const spec::Model model = parse(relu_contents(row.target, DType::Float32));
    EXPECT_EQ(model.specificationversion(), row.version);
    ASSERT_TRUE(model.has_mlprogram());
    EXPECT_EQ(model.mlprogram().version(), 1);
    const auto& main = model.mlprogram().functions().at("main");
    EXPECT_EQ(main.opset(), row.opset);
    EXPECT_EQ(main.block_specializations().size(), 1u);
    EXPECT_EQ(main.block_specializations().count(row.opset), 1u);
    EXPECT_TRUE(main.attributes().empty());  // coremltools' loader rejects function attributes
  }
  EXPECT_EQ(parse_target("ios17"), Target::iOS17);
  EXPECT_EQ(parse_target("macOS15"), Target::iOS18);
  EXPECT_THROW(parse_target("iOS14"), ExportError);
}

TEST(ModelSpec, FeaturesDescribeInputsAndOutputs) {
  const spec::Model model = parse(relu_contents(Target::iOS17, DType::Float16));
  ASSERT_EQ(model.description().input_size(), 1);
  const auto& in = model.description().input(0);
  EXPECT_EQ(in.name(), "x");
  EXPECT_EQ(in.type().multiarraytype().datatype(), spec::ArrayFeatureType::FLOAT16);
  EXPECT_EQ(static_cast<int>(spec::ArrayFeatureType::FLOAT16), 65552);
  EXPECT_EQ(in.type().multiarraytype().shape_size(), 2);
  EXPECT_EQ(in.type().multiarraytype().shape(1), 4);
  EXPECT_EQ(model.description().output(0).name(), "y");
  const spec::Model fp32 = parse(relu_contents(Target::iOS15, DType::Float32));
  const auto& output = fp32.description().output(0);
  EXPECT_EQ(static_cast<int>(output.type().multiarraytype().datatype()), 65568);
}

TEST(ModelSpec, MetadataNamesLinquant) {
  ModelInfo info;
  info.author = "me";
  info.source = "torch==1.13.1";
  info.user_defined["training.epochs"] = "3";
  const spec::Model model = parse(relu_contents(Target::iOS17, DType::Float32, info));
  const auto& metadata = model.description().metadata();
  EXPECT_EQ(metadata.author(), "me");
  EXPECT_EQ(metadata.userdefined().at("linquant.version"), linquant_version());
  EXPECT_EQ(metadata.userdefined().at("linquant.source"), "torch==1.13.1");
  EXPECT_EQ(metadata.userdefined().at("training.epochs"), "3");
  const auto& build_info = model.mlprogram().attributes().at("buildInfo");
  ASSERT_TRUE(build_info.type().has_dictionarytype());
  EXPECT_EQ(build_info.type().dictionarytype().keytype().tensortype().datatype(),
            ::CoreML::Specification::MILSpec::STRING);
  bool found = false;
  for (const auto& pair : build_info.immediatevalue().dictionary().values()) {
    if (pair.key().immediatevalue().tensor().strings().values(0) == "linquant-version") {
      EXPECT_EQ(pair.value().immediatevalue().tensor().strings().values(0), linquant_version());
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(ModelSpec, SerializationIsDeterministic) {
  const PackageContents a = build_package_contents(relu_program(Target::iOS17, DType::Float32));
  const PackageContents b = build_package_contents(relu_program(Target::iOS17, DType::Float32));
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.weights, b.weights);
}

TEST(ModelSpec, RejectsInvalidInterfaces) {
  ProgramBuilder no_outputs(Target::iOS17);
  no_outputs.add_input("x", ty(DType::Float32, {1}));
  EXPECT_THROW(build_package_contents(no_outputs), ExportError);
  // fp16 model features need iOS16+.
  EXPECT_THROW(build_package_contents(relu_program(Target::iOS15, DType::Float16)), ExportError);
  // int8 is not a model feature type.
  ProgramBuilder int8_out(Target::iOS17);
  const Var x = int8_out.add_input("x", ty(DType::Float32, {4}));
  int8_out.set_outputs({int8_out.add_op("quantize", "q",
                                        {{"input", x}, {"scale", TensorValue::scalar_float32(1)},
                                         {"output_dtype", TensorValue::scalar_string("int8")}},
                                        ty(DType::Int8, {4}))});
  try {
    build_package_contents(int8_out);
    FAIL();
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("\"q\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace linquant::coreml
