// linquant::coreml::save: writes a linquant graph (float, or finalized by
// LinearQuantizer::finalize()) as a Core ML ML Program package (.mlpackage).
//
// Quantized weights become constexpr ops (iOS17: constexpr_affine_dequantize with int8/uint8
// data; iOS18: constexpr_blockwise_shift_scale, int4/uint4 when the values fit), finalized
// activation quantizers become quantize/dequantize pairs with coremltools' zero-point
// rewrites, every other op its MIL counterpart (docs/coreml_export.md has the table). The
// whole program is built and checked in memory first; the package is written only when that
// succeeded, atomically, so a failure never leaves anything behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "linquant/export/coreml/mil_builder.h"
#include "linquant/export/coreml/target.h"
#include "linquant/runtime/graph_module.h"

namespace linquant::coreml {

struct SaveOptions {
  // iOS17 (specification 8, opset CoreML7) is the first target with activation
  // quantize/dequantize; 4-bit weights need iOS18. Float graphs may target iOS15 or later.
  Target target = Target::iOS17;
  // Precision of every float tensor of the program: inputs and outputs (fp16 model features
  // from iOS16 on; before that the interface stays fp32 with casts inside), constants,
  // quantization scales and intermediate values.
  ComputePrecision precision = ComputePrecision::Float16;
  // Replace an existing package at the destination; without it that is an error.
  bool overwrite = false;
  // Model feature names; empty: the graph's value names, made valid MIL identifiers
  // ("x.1" -> "x_1"). When given, one per graph input / output.
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  // Fixed input shapes; empty: the shapes recorded by GraphModule::record_shapes (prepare()
  // records them). When given (or when nothing was recorded) every value's shape is
  // recorded again by running the graph once on zeros. The batch dimension is whatever these
  // shapes say: flexible shapes are not supported.
  std::vector<std::vector<int64_t>> input_shapes;
};

// Writes `path` + ".mlpackage" (unless `path` already ends with it) and returns the path of
// the package written. Throws ExportError (a linquant::Error) naming the node, value or file
// and what to change; nothing is written then.
std::string save(const GraphModule& model, const std::string& path,
                 const SaveOptions& options = {});
std::string save(const ir::Graph& graph, const std::string& path,
                 const SaveOptions& options = {});

// The in-memory MIL program save() writes (for inspection, tests and other writers). Shapes
// must be recorded in the graph already (input_shapes is not used here; save() records them).
ProgramBuilder build_program(const ir::Graph& graph, const SaveOptions& options = {});

}  // namespace linquant::coreml
