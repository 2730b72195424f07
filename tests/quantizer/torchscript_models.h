// Where the quantizer tests find the TorchScript models of the frontend's test fixture.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace linquant::testing {

inline std::string models_dir() {
  const char* dir = std::getenv("LINQUANT_TORCHSCRIPT_MODELS");
  if (!dir) ADD_FAILURE() << "LINQUANT_TORCHSCRIPT_MODELS is not set (ctest sets it)";
  return dir ? dir : "";
}

}  // namespace linquant::testing
