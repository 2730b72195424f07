// Scale and zero point with torch's float32 operation order, so that every rounding
// step matches UniformQuantizationObserverBase._calculate_qparams.
#include "linquant/quant/qparams.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "linquant/common/error.h"

namespace linquant {

QParam compute_qparam(float min_val, float max_val, const QuantRange& range,
                      QuantizationScheme scheme) {
  if (!(min_val <= max_val)) {
    std::ostringstream message;
    message << "observed range is inverted or NaN: min " << min_val << " > max " << max_val;
    throw QuantError(message.str());
  }
  const float min_neg = std::min(min_val, 0.0f);
  const float max_pos = std::max(max_val, 0.0f);
  QParam qparam;
  if (scheme == QuantizationScheme::symmetric) {
    const float abs_max = std::max(-min_neg, max_pos);
    const float half_levels = static_cast<float>(range.quant_max - range.quant_min) / 2.0f;
    qparam.scale = std::max(abs_max / half_levels, kQParamsEps);
    qparam.zero_point = range.symmetric_zero_point();
  } else {
    const float levels = static_cast<float>(range.quant_max - range.quant_min);
    qparam.scale = std::max((max_pos - min_neg) / levels, kQParamsEps);
    // round() in torch is half-to-even, like nearbyint in the default rounding mode.
    const auto shift = static_cast<int64_t>(std::nearbyint(min_neg / qparam.scale));
    const int64_t zero_point = range.quant_min - shift;
    qparam.zero_point =
        static_cast<int32_t>(std::clamp(zero_point, range.quant_min, range.quant_max));
  }
  return qparam;
}

}  // namespace linquant
