// Integer ranges per dtype (coremltools' get_quant_range for 4 bits, torch's for 8 bits).
#include "linquant/quant/quant_range.h"

#include "linquant/common/error.h"

namespace linquant {

int32_t QuantRange::symmetric_zero_point() const {
  if (!is_unsigned) return 0;
  // torch uses 128 for the default quint8 range and the rounded-down middle otherwise.
  if (!is_narrowed) return 128;
  return static_cast<int32_t>((quant_min + quant_max) / 2);
}

int QuantRange::n_bits() const {
  int bits = 0;
  for (int64_t levels = quant_max - quant_min + 1; levels > 1; levels >>= 1) ++bits;
  return bits;
}

bool QuantRange::operator==(const QuantRange& other) const {
  return quant_min == other.quant_min && quant_max == other.quant_max &&
         is_unsigned == other.is_unsigned && is_narrowed == other.is_narrowed;
}

QuantRange quant_range(WeightDtype dtype) {
  switch (dtype) {
    case WeightDtype::qint4: return QuantRange::qint4();
    case WeightDtype::quint4: return QuantRange::quint4();
    case WeightDtype::qint8: return QuantRange::qint8();
    case WeightDtype::quint8: return QuantRange::quint8();
    case WeightDtype::float32: break;
  }
  throw QuantError("weight dtype float32 has no integer range: float32 weights are not quantized");
}

QuantRange quant_range(ActivationDtype dtype) {
  if (dtype == ActivationDtype::quint8) return QuantRange::quint8();
  throw QuantError(
      "activation dtype float32 has no integer range: float32 activations are not quantized");
}

}  // namespace linquant
