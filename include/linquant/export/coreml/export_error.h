// The Core ML export layer throws the exporters' common error type.
#pragma once

#include "linquant/export/export_error.h"

namespace linquant::coreml {

using ExportError = linquant::ExportError;

}  // namespace linquant::coreml
