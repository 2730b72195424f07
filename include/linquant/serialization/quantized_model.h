// Saving a quantized model and loading it back. A finalized graph carries activation qparams
// as node attributes, not tensors, so a torch::save of the finalized module alone could not
// be loaded back. The file (a torch::serialize archive, i.e. a zip) therefore holds what
// rebuilds it exactly:
//   - the config and the shapes and types of the example inputs of prepare();
//   - the prepared (QAT) model's parameters and buffers (weights, observers, qparams,
//     switches, BatchNorm statistics) as they were before finalize;
//   - the finalized model's tensors (the int-grid weights and their scales);
//   - optionally the float TorchScript model itself, and the caller's metadata (JSON).
// Loading re-runs capture -> prepare -> load the prepared state -> finalize on the same float
// architecture, then checks that every finalized tensor equals the saved one bit for bit, so
// a file that does not rebuild to the model it was saved from is rejected.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "linquant/config/linear_quantizer_config.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "linquant/runtime/graph_module.h"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace linquant {

struct SaveOptions {
  // The float model's TorchScript file content, embedded so that load_quantized_model(file)
  // rebuilds without being given the model; empty: the loader gives the model again.
  std::string torchscript;
  std::string source_name;           // where the float model came from (shown by inspect)
  std::string metadata_json = "{}";  // the caller's own, a JSON object, returned as saved
};

// What a file holds besides the tensors.
struct QuantizedModelInfo {
  LinearQuantizerConfig config;
  std::vector<std::vector<int64_t>> input_shapes;  // of prepare()'s example inputs
  std::vector<c10::ScalarType> input_types;
  std::string torchscript;  // empty unless embedded
  std::string source_name;
  std::string metadata_json;
};

struct QuantizedModel {
  QuantizedModelInfo info;
  // The embedded TorchScript model when the file has one (the graphs use its tensors).
  std::shared_ptr<torch::jit::Module> torchscript_model;
  std::unique_ptr<LinearQuantizer> quantizer;  // prepared, holding the saved state
  GraphModule finalized{nullptr};
};

// Saves the quantizer's prepared model (prepare() must have run) and the model finalize()
// makes of it now, which leaves the prepared model as it was. Writes a new file beside `file`
// and renames it into place; throws Error (nothing written) on failure.
void save_quantized_model(const std::filesystem::path& file, LinearQuantizer& quantizer,
                          const SaveOptions& options = {});
// The same file content in memory.
std::string quantized_model_bytes(LinearQuantizer& quantizer, const SaveOptions& options = {});

// True when `file` is a linquant quantized-model file (any other zip, e.g. TorchScript: false).
// Throws Error for a damaged archive.
bool is_quantized_model_file(const std::filesystem::path& file);

// Builds the LinearQuantizer on the float model for a file's config.
using QuantizerFactory = std::function<std::unique_ptr<LinearQuantizer>(const QuantizedModelInfo&)>;

// Rebuilds the model of a file saved with an embedded TorchScript model.
QuantizedModel load_quantized_model(const std::filesystem::path& file);
// Rebuilds it on the float model `make` quantizes, which must have the architecture the file
// was saved from (its weights need not be trained: the saved state replaces them, and a model
// prepared in place, as C++ modules are, receives the saved values in its own tensors).
QuantizedModel load_quantized_model(const std::filesystem::path& file,
                                    const QuantizerFactory& make);

// The same for a float model given as LinearQuantizer takes it (a C++ module, a Sequential,
// a TorchScript module).
template <typename Model>
QuantizedModel load_quantized_model_into(const std::filesystem::path& file, const Model& model) {
  return load_quantized_model(file, [&model](const QuantizedModelInfo& info) {
    return std::make_unique<LinearQuantizer>(model, info.config);
  });
}

}  // namespace linquant
