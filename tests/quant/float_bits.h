// The bit pattern of a float, for tests that require bit-for-bit equality (so that -0 and +0,
// and different NaNs, are told apart).
#pragma once

#include <cstdint>
#include <cstring>

namespace linquant {

inline uint32_t float_bits(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

}  // namespace linquant
