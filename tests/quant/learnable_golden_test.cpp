// Replays learnable_golden.pt, written at test time by tests/quant/learnable/
// make_learnable_golden.py (reference 4.2 in plain torch 1.13 ops and autograd, on this
// machine: the parameter gradients are ATen sums, whose order follows the CPU's vector width)
// through linquant's learnable FakeQuantize: every step's output, the gradients of the input,
// scale and zero point, and the parameters after the SGD update must agree bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "../support/pickled_cases.h"
#include "linquant/quant/fake_quantize.h"

namespace linquant {
namespace {

using Case = testing::PickledCase;

// Same lists as the generator.
const ObserverType kObservers[] = {ObserverType::moving_average_min_max, ObserverType::min_max,
                                   ObserverType::ema_min_max};
const QuantRange kRanges[] = {QuantRange::qint8(), QuantRange::quint8(), QuantRange::qint4(),
                              QuantRange::quint4()};
const QuantizationScheme kSchemes[] = {QuantizationScheme::symmetric, QuantizationScheme::affine};

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.detach().contiguous().to(at::kFloat);
  const at::Tensor y = b.detach().contiguous().to(at::kFloat);
  return x.sizes() == y.sizes() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<size_t>(x.numel()) * 4) == 0;
}

std::string first_difference(const at::Tensor& got, const at::Tensor& want) {
  if (got.sizes() != want.sizes()) return "shape differs";
  const at::Tensor g = got.detach().flatten().to(at::kFloat);
  const at::Tensor w = want.detach().flatten().to(at::kFloat);
  for (int64_t i = 0; i < g.numel(); ++i) {
    const float a = g[i].item<float>();
    const float b = w[i].item<float>();
    if (std::memcmp(&a, &b, 4) != 0) {
      return "element " + std::to_string(i) + ": " + std::to_string(a) + " vs " + std::to_string(b);
    }
  }
  return "";
}

TEST(LearnableGolden, EveryStepAgreesBitForBit) {
  const std::map<std::string, Case> cases =
      testing::load_pickled_cases("LINQUANT_LEARNABLE_GOLDEN");
  ASSERT_GE(cases.size(), 150u) << "learnable_golden.pt missing or short: ctest's fixture "
                                   "quant.make_learnable_golden writes it "
                                   "(LINQUANT_LEARNABLE_GOLDEN)";
  at::set_num_threads(1);
  int64_t steps_checked = 0;
  for (const auto& [name, c] : cases) {
    SCOPED_TRACE(name);
    const at::Tensor meta = c.at("meta");
    FakeQuantizeOptions options;
    options.observer = kObservers[meta[0].item<int64_t>()];
    options.range = kRanges[meta[1].item<int64_t>()];
    options.scheme = kSchemes[meta[2].item<int64_t>()];
    options.ch_axis = meta[3].item<int64_t>();
    options.algorithm = Algorithm::learnable;
    FakeQuantize fq(options);
    if (options.per_channel()) fq->set_channels(c.at("x0").size(options.ch_axis));
    for (int64_t k = 0; k < meta[4].item<int64_t>(); ++k) {
      const std::string i = std::to_string(k);
      const at::Tensor flags = c.at("flags" + i);
      fq->enable_observer(flags[0].item<uint8_t>() != 0);
      fq->enable_fake_quant(flags[1].item<uint8_t>() != 0);
      for (at::Tensor p : {fq->scale, fq->zero_point}) {
        if (p.grad().defined()) p.mutable_grad() = at::Tensor();
      }
      const at::Tensor x = c.at("x" + i).clone().requires_grad_(true);
      const at::Tensor y = fq->forward(x);
      y.backward(c.at("grad_output" + i));
      EXPECT_TRUE(same_bits(y, c.at("y" + i)))
          << "y, step " << k << ": " << first_difference(y, c.at("y" + i));
      EXPECT_TRUE(same_bits(x.grad(), c.at("grad_x" + i)))
          << "grad x, step " << k << ": " << first_difference(x.grad(), c.at("grad_x" + i));
      for (const char* param : {"scale", "zero_point"}) {
        const at::Tensor& p = std::string(param) == "scale" ? fq->scale : fq->zero_point;
        const std::string key = std::string("grad_") + param + i;
        ASSERT_EQ(p.grad().defined(), c.count(key) == 1) << key;
        if (c.count(key)) {
          EXPECT_TRUE(same_bits(p.grad().reshape(c.at(key).sizes()), c.at(key)))
              << key << ": " << first_difference(p.grad().reshape(c.at(key).sizes()), c.at(key));
        }
      }
      {
        const at::NoGradGuard no_grad;
        const double lr = c.at("lr" + i).item<double>();
        for (at::Tensor p : {fq->scale, fq->zero_point}) {
          if (p.grad().defined()) p.add_(p.grad(), -lr);
        }
      }
      for (const char* param : {"scale", "zero_point"}) {
        const at::Tensor& p = std::string(param) == "scale" ? fq->scale : fq->zero_point;
        const at::Tensor& want = c.at(param + i);
        EXPECT_TRUE(same_bits(p.reshape(want.sizes()), want))
            << param << " after step " << k << ": "
            << first_difference(p.reshape(want.sizes()), want);
      }
      ++steps_checked;
    }
  }
  EXPECT_GT(steps_checked, 450);
}

}  // namespace
}  // namespace linquant
