// The Core ML model around a MIL program: specification version, input/output descriptions,
// metadata and build information, serialized to the bytes of model.mlmodel.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "linquant/export/coreml/mil_builder.h"

namespace linquant::coreml {

// Human-facing model metadata. linquant adds "linquant.version" and "linquant.source" to
// user_defined (the producer keys coremltools would fill with its own name); entries given here
// with the same keys win.
struct ModelInfo {
  std::string short_description;
  std::string author;
  std::string license;
  std::string version_string;
  std::string source = "linquant";  // what the model was made from, e.g. "torch==1.13.1"
  std::map<std::string, std::string> user_defined;
};

// The two files of an ML Program package, ready to be written.
struct PackageContents {
  std::string model;                  // serialized CoreML.Specification.Model
  std::vector<std::uint8_t> weights;  // MIL blob storage v2
};

// Checks that the program is complete (outputs set) and its inputs/outputs are valid model
// features (fp32, fp16 from iOS16, or int32 multi-arrays of rank >= 1), then serializes.
// Serialization is deterministic (map entries in key order).
PackageContents build_package_contents(const ProgramBuilder& program, const ModelInfo& info = {});

// The linquant version written into the metadata.
std::string linquant_version();

}  // namespace linquant::coreml
