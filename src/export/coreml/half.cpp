// binary32 <-> binary16 by bit manipulation (no reliance on _Float16 or F16C).
#include "linquant/export/coreml/half.h"

#include <cstring>

namespace linquant::coreml {

std::uint16_t float_to_half_bits(float value) {
  std::uint32_t f = 0;
  std::memcpy(&f, &value, sizeof f);
  const std::uint32_t sign = (f >> 16) & 0x8000u;
  const std::uint32_t exponent = (f >> 23) & 0xFFu;
  std::uint32_t mantissa = f & 0x7FFFFFu;

  if (exponent == 0xFFu) {
    // Keep NaNs NaN (set the quiet bit so a payload that only lived in the low bits survives).
    if (mantissa != 0) return static_cast<std::uint16_t>(sign | 0x7E00u | (mantissa >> 13));
    return static_cast<std::uint16_t>(sign | 0x7C00u);
  }

  const int half_exponent = static_cast<int>(exponent) - 127 + 15;
  if (half_exponent >= 31) return static_cast<std::uint16_t>(sign | 0x7C00u);

  if (half_exponent <= 0) {
    // Subnormal result: below half the smallest subnormal (2^-25) everything rounds to zero.
    if (half_exponent < -10) return static_cast<std::uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - half_exponent;  // from units of 2^-23 * 2^(e-15) to units of 2^-24
    std::uint32_t half_mantissa = mantissa >> shift;
    const std::uint32_t remainder = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1u))) ++half_mantissa;
    // A carry out of the mantissa lands in the exponent field: the smallest normal, as it should.
    return static_cast<std::uint16_t>(sign | half_mantissa);
  }

  std::uint32_t half = sign | (static_cast<std::uint32_t>(half_exponent) << 10) | (mantissa >> 13);
  const std::uint32_t remainder = mantissa & 0x1FFFu;
  // Rounding up may carry into the exponent, up to infinity (0x7C00): correct for binary16.
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(half);
}

float half_bits_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  std::uint32_t mantissa = bits & 0x3FFu;
  std::uint32_t f = 0;
  if (exponent == 0x1Fu) {
    f = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    f = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    f = sign;
  } else {
    // Normalize the subnormal: shift until the implicit bit appears, lowering the exponent.
    std::int32_t e = 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    mantissa &= 0x3FFu;
    f = sign | (static_cast<std::uint32_t>(e + 112) << 23) | (mantissa << 13);
  }
  float value = 0.0f;
  std::memcpy(&value, &f, sizeof value);
  return value;
}

}  // namespace linquant::coreml
