#include "aten_row_sum.h"

#include <ATen/ATen.h>

#include <cmath>

namespace linquant::runtime {
namespace {

// Rows long enough for two cascade flushes at either width, leftover vectors and a scalar
// tail, with values of many magnitudes and both signs, so that another order of additions
// changes the bits.
constexpr int64_t kProbeRows = 3, kProbeLength = 4 * 16 * 40 + 2 * 16 + 8 + 5;

template <int64_t Lanes>
bool sums_like(const at::Tensor& rows, const at::Tensor& sums) {
  for (int64_t row = 0; row < kProbeRows; ++row) {
    const float* x = rows.data_ptr<float>() + row * kProbeLength;
    if (aten_row_sum_of<Lanes>(x, kProbeLength) != sums.data_ptr<float>()[row]) return false;
  }
  return true;
}

int64_t probe_lanes() {
  at::Tensor rows = at::empty({1, kProbeRows, kProbeLength}, at::kFloat);
  float* data = rows.data_ptr<float>();
  for (int64_t i = 0; i < rows.numel(); ++i) {
    const double magnitude = std::ldexp(1.0, static_cast<int>((i * 7) % 41) - 20);
    data[i] = static_cast<float>(static_cast<double>((i * 7919) % 2001 - 1000) * magnitude);
  }
  const at::Tensor sums = at::sum_to(rows, at::IntArrayRef{1, kProbeRows, 1});
  if (sums_like<8>(rows, sums)) return 8;
  if (sums_like<16>(rows, sums)) return 16;
  return 0;
}

}  // namespace

int64_t aten_sum_lanes() {
  static const int64_t lanes = probe_lanes();
  return lanes;
}

}  // namespace linquant::runtime
