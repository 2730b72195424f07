// Element types of MIL tensors as linquant writes them, with their MIL names and widths.
#pragma once

#include <string>

namespace linquant::coreml {

enum class DType {
  Bool,
  String,
  Float16,
  Float32,
  Int4,
  UInt4,
  Int8,
  UInt8,
  Int16,
  UInt16,
  Int32,
  Int64,
};

// The MIL spelling ("fp16", "int8", ...), also what quantize's output_dtype expects.
std::string dtype_name(DType dtype);

// Bits one element occupies in packed storage; 0 for strings (variable length).
int dtype_bits(DType dtype);

bool is_float(DType dtype);
bool is_sub_byte(DType dtype);

}  // namespace linquant::coreml
