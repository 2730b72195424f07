// Wraps the built MIL program into a CoreML.Specification.Model: spec version from the target,
// feature descriptions derived from the program's inputs and outputs, linquant's metadata.
#include "linquant/export/coreml/model_spec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "Model.pb.h"
#include "linquant/export/coreml/export_error.h"
#include "program_state.h"
#include "value_proto.h"

#ifndef LINQUANT_VERSION_STRING
#define LINQUANT_VERSION_STRING "unknown"
#endif

namespace linquant::coreml {

namespace spec = ::CoreML::Specification;

namespace {

void describe_feature(const Var& var, Target target, const char* role,
                      spec::FeatureDescription* out) {
  using ArrayType = spec::ArrayFeatureType;
  ArrayType::ArrayDataType data_type = ArrayType::INVALID_ARRAY_DATA_TYPE;
  switch (var.type().dtype) {
    case DType::Float32: data_type = ArrayType::FLOAT32; break;
    case DType::Int32: data_type = ArrayType::INT32; break;
    case DType::Float16:
      // Core ML accepts fp16 multi-arrays at the model interface only from iOS16 on.
      if (target < Target::iOS16) {
        throw ExportError("model " + std::string(role) + " \"" + var.name() +
                          "\" is fp16, which needs target iOS16 or later (target is " +
                          to_string(target) + "); use fp32 for the model interface");
      }
      data_type = ArrayType::FLOAT16;
      break;
    default:
      throw ExportError("model " + std::string(role) + " \"" + var.name() + "\" has type " +
                        var.type().to_string() +
                        "; model inputs and outputs must be fp32, fp16 or int32");
  }
  if (var.type().rank() == 0) {
    throw ExportError("model " + std::string(role) + " \"" + var.name() +
                      "\" is a scalar; model features are multi-arrays of rank >= 1");
  }
  out->set_name(var.name());
  ArrayType* array = out->mutable_type()->mutable_multiarraytype();
  for (std::int64_t d : var.type().shape) array->add_shape(d);
  array->set_datatype(data_type);
}

std::string serialize_deterministic(const spec::Model& model) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    // Map entries in key order, so the same program always gives the same file.
    coded.SetSerializationDeterministic(true);
    if (!model.SerializeToCodedStream(&coded) || coded.HadError()) {
      throw ExportError("could not serialize the Core ML model specification (" +
                        std::to_string(model.ByteSizeLong()) + " bytes; protobuf limit is 2 GiB)");
    }
  }
  return bytes;
}

}  // namespace

std::string linquant_version() { return LINQUANT_VERSION_STRING; }

PackageContents build_package_contents(const ProgramBuilder& program, const ModelInfo& info) {
  const detail::ProgramState& state = program.state();
  if (!state.outputs_set) {
    throw ExportError("cannot build a Core ML model: the program has no outputs "
                      "(call ProgramBuilder::set_outputs)");
  }
  if (state.inputs.empty()) {
    throw ExportError("cannot build a Core ML model: the program has no inputs");
  }

  spec::Model model;
  model.set_specificationversion(specification_version(state.target));

  spec::ModelDescription* description = model.mutable_description();
  for (const Var& var : state.inputs) {
    describe_feature(var, state.target, "input", description->add_input());
  }
  for (const Var& var : state.outputs) {
    describe_feature(var, state.target, "output", description->add_output());
  }

  spec::Metadata* metadata = description->mutable_metadata();
  metadata->set_shortdescription(info.short_description);
  metadata->set_author(info.author);
  metadata->set_license(info.license);
  metadata->set_versionstring(info.version_string);
  auto& user_defined = *metadata->mutable_userdefined();
  user_defined["linquant.version"] = linquant_version();
  user_defined["linquant.source"] = info.source;
  for (const auto& [key, value] : info.user_defined) user_defined[key] = value;

  detail::milspec::Program* ml_program = model.mutable_mlprogram();
  ml_program->set_version(1);
  const std::string opset = opset_name(state.target);
  detail::milspec::Function& main = (*ml_program->mutable_functions())["main"];
  main = state.function;
  main.set_opset(opset);
  (*main.mutable_block_specializations())[opset] = state.block;
  (*ml_program->mutable_attributes())["buildInfo"] = detail::string_dictionary_value(
      {{"linquant-version", linquant_version()}, {"linquant-source", info.source}});

  PackageContents contents;
  contents.model = serialize_deterministic(model);
  contents.weights = state.weights.bytes();
  return contents;
}

}  // namespace linquant::coreml
