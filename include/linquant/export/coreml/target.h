// Core ML deployment targets for ML Programs: each fixes the model's specificationVersion and
// the MIL opset its main function is written against.
#pragma once

#include <string>
#include <string_view>

namespace linquant::coreml {

// Ordered: a later target supports everything an earlier one does, so `<` compares them.
// iOS15 is the first target with ML Programs; activation quantize/dequantize need iOS17 and
// constexpr_blockwise_shift_scale (int4 weights) needs iOS18.
enum class Target { iOS15, iOS16, iOS17, iOS18 };

// Precision of the float tensors in the exported program (inputs, outputs, scales, biases).
enum class ComputePrecision { Float16, Float32 };

int specification_version(Target target);   // 6, 7, 8, 9
std::string opset_name(Target target);      // "CoreML5" .. "CoreML8"
std::string to_string(Target target);       // "iOS15" .. "iOS18"
std::string to_string(ComputePrecision precision);  // "fp16", "fp32"

// Accepts "iOS15".."iOS18" and the macOS aliases "macOS12".."macOS15" (case-insensitive).
Target parse_target(std::string_view text);

}  // namespace linquant::coreml
