// Everything that defines one fake quantizer: integer range, scheme, observer and axis.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "linquant/config/enums.h"
#include "linquant/quant/qparams.h"
#include "linquant/quant/quant_range.h"

namespace linquant {

struct FakeQuantizeOptions {
  QuantRange range = QuantRange::quint8();
  QuantizationScheme scheme = QuantizationScheme::symmetric;
  ObserverType observer = ObserverType::moving_average_min_max;
  int64_t ch_axis = -1;                // -1: one scale for the whole tensor
  // Kept in double like the Python originals: (1 - r) is formed in double, then each
  // factor is rounded to float32 when it meets the float32 state.
  double averaging_constant = 0.01;    // moving_average_min_max: m += c * (cur - m)
  double ema_ratio = 0.9;              // ema_min_max: m = r * m + (1 - r) * cur

  // vanilla: FakeQuantize (scale and zero point follow the observer); learnable: LSQ/LSQ+ as
  // coremltools' LearnableFakeQuantize (scale and zero point are parameters the optimizer
  // learns while fake quantization runs; the observer overwrites them while it is on).
  Algorithm algorithm = Algorithm::vanilla;

  // Set for ops whose output range is known (sigmoid, tanh, softmax): the observer is
  // never consulted and scale/zero point stay at these values.
  std::optional<QParam> fixed_qparams;

  bool per_channel() const { return ch_axis >= 0; }
  // Learnable, unless the qparams are fixed (those quantizers never learn, as in coremltools).
  bool learnable() const { return algorithm == Algorithm::learnable && !fixed_qparams; }
  // "symmetric quint8 [0, 255] per tensor, moving_average_min_max"
  std::string describe() const;
};

}  // namespace linquant
