// MIL element type names and storage widths.
#include "linquant/export/coreml/dtype.h"

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "bool";
    case DType::String: return "string";
    case DType::Float16: return "fp16";
    case DType::Float32: return "fp32";
    case DType::Int4: return "int4";
    case DType::UInt4: return "uint4";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Int16: return "int16";
    case DType::UInt16: return "uint16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
  }
  throw ExportError("dtype_name: unknown dtype");
}

int dtype_bits(DType dtype) {
  switch (dtype) {
    case DType::String: return 0;
    case DType::Int4:
    case DType::UInt4: return 4;
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8: return 8;
    case DType::Float16:
    case DType::Int16:
    case DType::UInt16: return 16;
    case DType::Float32:
    case DType::Int32: return 32;
    case DType::Int64: return 64;
  }
  throw ExportError("dtype_bits: unknown dtype");
}

bool is_float(DType dtype) { return dtype == DType::Float16 || dtype == DType::Float32; }

bool is_sub_byte(DType dtype) { return dtype == DType::Int4 || dtype == DType::UInt4; }

}  // namespace linquant::coreml
