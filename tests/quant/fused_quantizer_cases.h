// What the fused-quantizer tests (ReLU, add, hardswish) share: the activation quantizers each
// case runs with (every observer, both schemes, the 8-bit and 4-bit activation ranges, all per
// tensor), and the check that the fused and the composite quantizer end in the same state.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "linquant/quant/fake_quantize.h"

namespace linquant {

inline std::vector<FakeQuantizeOptions> fused_quantizer_variants() {
  struct Variant {
    ObserverType observer;
    QuantizationScheme scheme;
    QuantRange range;
  };
  const Variant variants[] = {
      {ObserverType::moving_average_min_max, QuantizationScheme::symmetric, QuantRange::quint8()},
      {ObserverType::moving_average_min_max, QuantizationScheme::affine, QuantRange::quint8()},
      {ObserverType::min_max, QuantizationScheme::affine, QuantRange::qint8()},
      {ObserverType::ema_min_max, QuantizationScheme::symmetric, QuantRange::qint8()},
      {ObserverType::min_max, QuantizationScheme::symmetric, QuantRange::quint4()},
  };
  std::vector<FakeQuantizeOptions> all;
  for (const Variant& v : variants) {
    FakeQuantizeOptions options;
    options.observer = v.observer;
    options.scheme = v.scheme;
    options.range = v.range;
    all.push_back(options);
  }
  return all;
}

// Both observed, with the same range and qparams afterwards.
inline void expect_same_state(const FakeQuantize& fused, const FakeQuantize& composite,
                              const std::string& what) {
  // Equal parameters mean something only if both sides observed the input.
  ASSERT_TRUE(fused->activation_post_process->has_observed()) << what;
  ASSERT_TRUE(composite->activation_post_process->has_observed()) << what;
  EXPECT_EQ(fused->scale.item<float>(), composite->scale.item<float>()) << what;
  EXPECT_EQ(fused->zero_point.item<int32_t>(), composite->zero_point.item<int32_t>()) << what;
  EXPECT_EQ(fused->activation_post_process->min_val.item<float>(),
            composite->activation_post_process->min_val.item<float>())
      << what;
  EXPECT_EQ(fused->activation_post_process->max_val.item<float>(),
            composite->activation_post_process->max_val.item<float>())
      << what;
}

}  // namespace linquant
