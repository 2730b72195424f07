// The exception every exporter throws (Core ML, ONNX): bad input graphs, unsupported ops or
// types, and files that cannot be written.
#pragma once

#include "linquant/common/error.h"

namespace linquant {

// Messages name the node, value or file concerned and what would fix the problem.
class ExportError : public Error {
 public:
  using Error::Error;
};

}  // namespace linquant
