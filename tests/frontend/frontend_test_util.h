// Helpers shared by the frontend tests: the TorchScript models written by the ctest fixture
// (models/make_torchscript_models.py), Python's facts about them, and graph summaries.
#pragma once

#include <torch/script.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::frontend::testing {

inline std::string models_dir() {
  if (const char* dir = std::getenv("LINQUANT_TORCHSCRIPT_MODELS")) return dir;
  return LINQUANT_TORCHSCRIPT_MODELS_DIR;
}

inline torch::jit::Module load_model(const std::string& name) {
  return torch::jit::load(models_dir() + "/" + name + ".pt");
}

// {"training", "input_shapes", "parameters", "buffers", "modules": [[name, type], ...]}
inline nlohmann::json load_facts(const std::string& name) {
  std::ifstream file(models_dir() + "/" + name + ".json");
  if (!file) throw std::runtime_error("missing " + models_dir() + "/" + name + ".json");
  return nlohmann::json::parse(file);
}

inline std::vector<std::string> op_sequence(const ir::Graph& graph) {
  std::vector<std::string> ops;
  for (const ir::Node& node : graph.nodes()) ops.push_back(ir::to_string(node.op));
  return ops;
}

inline std::map<std::string, int> op_counts(const ir::Graph& graph) {
  std::map<std::string, int> counts;
  for (const ir::Node& node : graph.nodes()) ++counts[ir::to_string(node.op)];
  return counts;
}

}  // namespace linquant::frontend::testing
