// What an ONNX model file holds, read with the exporter's own message definitions: for
// `linquant inspect` and for tests that look at a written model without Python.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace linquant::onnx {

struct ModelSummary {
  struct Value {
    std::string name;
    std::string type;            // "float", "int64", ...
    std::vector<int64_t> shape;  // -1 for a symbolic dimension
  };
  int64_t ir_version = 0;
  int64_t opset = 0;  // default domain
  std::string producer;
  std::vector<Value> inputs;
  std::vector<Value> outputs;
  std::map<std::string, int64_t> op_counts;  // by op type
  std::vector<std::string> nodes;            // "Conv conv: x, w, b -> y", in order
  int64_t initializer_count = 0;
  std::map<std::string, int64_t> initializer_bytes;  // by element type
  std::map<std::string, std::string> metadata;
};

// Throws ExportError when `bytes` is not an ONNX model (or uses parts of ONNX this reader
// does not know, such as external data).
ModelSummary summarize_model(const std::string& bytes);

}  // namespace linquant::onnx
