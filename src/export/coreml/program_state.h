// Library-internal: the state behind ProgramBuilder, shared with the model serializer.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "MIL.pb.h"
#include "linquant/export/coreml/blob_writer.h"
#include "linquant/export/coreml/identifier.h"
#include "linquant/export/coreml/mil_builder.h"
#include "linquant/export/coreml/target.h"

namespace linquant::coreml::detail {

struct ProgramState {
  Target target = Target::iOS17;
  // Function inputs (NamedValueTypes); opset and block are filled in at serialization.
  ::CoreML::Specification::MILSpec::Function function;
  ::CoreML::Specification::MILSpec::Block block;
  NameRegistry names;
  std::unordered_map<std::string, TensorType> var_types;
  std::unordered_set<std::string> constexpr_outputs;
  std::vector<Var> inputs;
  std::vector<Var> outputs;
  bool outputs_set = false;
  BlobWriter weights;
};

}  // namespace linquant::coreml::detail
