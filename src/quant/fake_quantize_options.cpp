// Human-readable description of a fake quantizer, used in reports and error messages.
#include "linquant/quant/fake_quantize_options.h"

#include <sstream>

namespace linquant {

std::string FakeQuantizeOptions::describe() const {
  std::ostringstream text;
  text << to_string(scheme) << " " << (range.is_unsigned ? "quint" : "qint") << range.n_bits()
       << " [" << range.quant_min << ", " << range.quant_max << "] ";
  if (per_channel()) {
    text << "per channel (axis " << ch_axis << ")";
  } else {
    text << "per tensor";
  }
  if (fixed_qparams) {
    text << ", fixed scale " << fixed_qparams->scale << " zero point " << fixed_qparams->zero_point;
  } else {
    text << ", " << to_string(observer);
  }
  if (learnable()) text << ", learnable";
  return text.str();
}

}  // namespace linquant
