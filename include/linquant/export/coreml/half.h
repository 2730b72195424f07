// IEEE 754 binary16 conversion, done in integer arithmetic so the result does not depend on the
// compiler or the host's float16 support.
#pragma once

#include <cstdint>

namespace linquant::coreml {

// Round to nearest, ties to even; overflow gives +-inf, NaN stays NaN (quiet), and values below
// the smallest subnormal round to signed zero. Same results as numpy's float32 -> float16.
std::uint16_t float_to_half_bits(float value);

// Exact: every binary16 value is representable as a float.
float half_bits_to_float(std::uint16_t bits);

}  // namespace linquant::coreml
