// Integer ranges of the quantized dtypes. 4-bit types are 8-bit storage with a narrowed
// range, as in coremltools; the narrowing changes the symmetric zero point of unsigned types.
#pragma once

#include <cstdint>

#include "linquant/config/enums.h"

namespace linquant {

struct QuantRange {
  int64_t quant_min = 0;
  int64_t quant_max = 255;
  bool is_unsigned = true;   // quint storage: the symmetric zero point sits mid-range
  bool is_narrowed = false;  // narrower than its 8-bit storage (4-bit)

  static QuantRange qint8() { return {-128, 127, false, false}; }
  static QuantRange quint8() { return {0, 255, true, false}; }
  static QuantRange qint4() { return {-8, 7, false, true}; }
  static QuantRange quint4() { return {0, 15, true, true}; }

  // 0 for signed types; 128 for full-range quint8; (min + max) / 2 rounded down otherwise.
  int32_t symmetric_zero_point() const;
  int n_bits() const;
  bool operator==(const QuantRange& other) const;
};

// Throws QuantError for float32, which has no integer range.
QuantRange quant_range(WeightDtype dtype);
QuantRange quant_range(ActivationDtype dtype);

}  // namespace linquant
