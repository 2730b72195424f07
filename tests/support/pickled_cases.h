// Test cases that a Python reference script wrote at test time with torch.save: a dict of case
// name -> dict of tensor name -> tensor, read from the file an environment variable names
// (ctest sets it to the fixture's output in the build tree). Empty when the file is missing,
// so the test can say which fixture writes it.
#pragma once

#include <torch/serialize.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace linquant::testing {

using PickledCase = std::map<std::string, at::Tensor>;

inline std::map<std::string, PickledCase> load_pickled_cases(const char* path_variable) {
  const char* path = std::getenv(path_variable);
  std::ifstream file(path ? path : "", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  std::map<std::string, PickledCase> cases;
  if (bytes.empty()) return cases;
  for (const auto& entry : torch::pickle_load(bytes).toGenericDict()) {
    PickledCase& c = cases[entry.key().toStringRef()];
    for (const auto& item : entry.value().toGenericDict()) {
      c[item.key().toStringRef()] = item.value().toTensor();
    }
  }
  return cases;
}

}  // namespace linquant::testing
