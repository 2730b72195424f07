// linquant::onnx::save: writes a linquant graph (float, or finalized by
// LinearQuantizer::finalize()) as an ONNX model in QDQ form.
//
// Every finalized activation quantizer becomes a QuantizeLinear whose integers each consumer
// reads through a DequantizeLinear of its own; quantized weights are int8/uint8 initializers
// (int4/uint4 from opset 21) behind a per-channel DequantizeLinear; a conv/linear bias whose
// input and weight are quantized becomes an int32 initializer of scale x_scale * w_scale, which
// is what lets runtimes such as ONNX Runtime fuse the group into one integer kernel. Ops that
// keep values on their input's grid (max pooling, reshapes, transposes) are requantized with
// the same parameters, which changes no value. Every other op is its ONNX counterpart
// (docs/onnx_export.md has the table). The model is built in memory first and written
// atomically, so a failure never leaves a file behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "linquant/export/export_error.h"
#include "linquant/runtime/graph_module.h"

namespace linquant::onnx {

struct SaveOptions {
  // The default-domain operator set: 13 (per-channel DequantizeLinear) up to 21 (int4 and
  // uint4 weights). Later ops are used where the opset has them (HardSwish from 14,
  // LayerNormalization from 17, Gelu from 20), their decompositions before.
  int64_t opset = 13;
  // A conv/linear bias whose input and weight are quantized as an int32 initializer on the
  // accumulator grid (x_scale * w_scale), which integer kernels need. Rounding the bias to that
  // grid moves results by up to half an accumulator step, so an output can land one
  // quantization step from linquant's own; false keeps float biases, computing exactly what
  // the finalized model computes, but ONNX Runtime then runs those ops in float.
  bool integer_bias = true;
  // 8-bit signed weights stored as uint8 with every value and zero point moved up by 128 (the
  // same dequantized weights). ONNX Runtime then runs its u8 x u8 kernels, which are exact on
  // every x86 CPU; its u8 x s8 kernels, chosen for int8 weights, add pairs of products in 16
  // bits with saturation on CPUs without VNNI (AVX2 only: AMD EPYC before Zen 4, Intel before
  // Cascade Lake), which moves outputs by several quantization steps. int8 (false) is the
  // usual QDQ form, which other runtimes (TensorRT) require and VNNI CPUs run fastest.
  bool uint8_weights = false;
  // Replace an existing file at the destination; without it that is an error.
  bool overwrite = false;
  // Model input/output names; empty: the graph's value names. When given, one per graph
  // input / output.
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  // Fixed input shapes; empty: the shapes the graph recorded (prepare() records them). The
  // batch dimension is whatever these shapes say.
  std::vector<std::vector<int64_t>> input_shapes;
};

inline constexpr int64_t kMinOpset = 13;
inline constexpr int64_t kMaxOpset = 21;

// `path` with ".onnx" appended unless it ends with it: the file save() writes. Throws
// ExportError for an empty path.
std::filesystem::path model_path(const std::filesystem::path& path);

// Writes model_path(path) and returns the path written.
// Throws ExportError naming the node, value or file and what to change; nothing is written then.
std::string save(const GraphModule& model, const std::string& path,
                 const SaveOptions& options = {});
std::string save(const ir::Graph& graph, const std::string& path, const SaveOptions& options = {});

// The lowest opset that holds `graph`: 21 when a weight is quantized to 4 bits, else 13.
int64_t minimum_opset(const ir::Graph& graph);

// The serialized ModelProto save() writes.
std::string model_bytes(const ir::Graph& graph, const SaveOptions& options = {});

}  // namespace linquant::onnx
