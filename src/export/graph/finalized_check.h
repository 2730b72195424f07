// Library-internal, shared by the exporters: what every exporter refuses before building
// anything, the same way: prepared (unfinalized) graphs, opaque submodule calls, and quantized
// weights without their finalized metadata or with a bit width other than 8 or 4. Throws
// ExportError naming the node; `format` ("Core ML", "ONNX") goes into the messages.
#pragma once

#include <string>

#include "linquant/ir/graph.h"

namespace linquant::graph_export {

void check_finalized(const ir::Node& node, const std::string& format);

}  // namespace linquant::graph_export
