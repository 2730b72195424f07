// The exception type of the Core ML export layer: bad builder use, unsupported types, and
// package files that cannot be written.
#pragma once

#include "linquant/common/error.h"

namespace linquant::coreml {

// Messages name the value, operation or file concerned and what would fix the problem.
class ExportError : public Error {
 public:
  using Error::Error;
};

}  // namespace linquant::coreml
