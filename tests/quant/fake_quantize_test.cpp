// FakeQuantize and Observer modules: flags, gradients, state-dict round trips, and the
// documented handling of empty and non-finite inputs.
#include "linquant/quant/fake_quantize.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/serialize.h>

#include <sstream>

#include "linquant/common/error.h"
#include "linquant/common/warning.h"

namespace linquant {
namespace {

FakeQuantizeOptions per_tensor_qint8() {
  FakeQuantizeOptions o;
  o.range = QuantRange::qint8();
  return o;
}

FakeQuantizeOptions per_channel_qint8(int64_t axis) {
  FakeQuantizeOptions o = per_tensor_qint8();
  o.ch_axis = axis;
  return o;
}

TEST(FakeQuantize, ObserverThenFakeQuantOnFirstCall) {
  FakeQuantize fq(per_tensor_qint8());
  const at::Tensor x = at::tensor({-1.275f, 0.004f, 0.006f, 1.0f});
  const at::Tensor y = fq->forward(x);
  EXPECT_EQ(fq->scale.item<float>(), 1.275f / 127.5f);
  EXPECT_EQ(fq->zero_point.item<int32_t>(), 0);
  EXPECT_EQ(fq->zero_point.scalar_type(), at::kInt);
  const float s = 1.275f / 127.5f;
  EXPECT_EQ(y[0].item<float>(), -128 * s);
  EXPECT_EQ(y[1].item<float>(), 0.0f);
  EXPECT_EQ(y[2].item<float>(), 1 * s);
}

TEST(FakeQuantize, FlagsTurnPartsOff) {
  FakeQuantize fq(per_tensor_qint8());
  fq->disable_fake_quant();
  const at::Tensor x = at::tensor({0.3f, -0.7f});
  EXPECT_TRUE(fq->forward(x).equal(x));
  EXPECT_EQ(fq->activation_post_process->min_val.item<float>(), -0.7f);
  fq->disable_observer();
  fq->enable_fake_quant();
  fq->forward(at::tensor({100.0f}));
  EXPECT_EQ(fq->activation_post_process->max_val.item<float>(), 0.3f);  // unchanged
  EXPECT_FALSE(fq->is_observer_enabled());
  EXPECT_TRUE(fq->is_fake_quant_enabled());
}

TEST(FakeQuantize, GradientIsMaskedStraightThrough) {
  FakeQuantize fq(per_tensor_qint8());
  fq->disable_observer();
  fq->scale.fill_(0.25f);  // a power of two keeps x / scale exact
  at::Tensor x = at::tensor({-33.0f, -32.0f, 31.75f, 31.875f, 100.0f}).set_requires_grad(true);
  fq->forward(x).backward(at::full({5}, 2.0f));
  // 31.875 / 0.25 = 127.5 rounds to 128 (tie to even): outside [-128, 127], so clipped.
  EXPECT_TRUE(x.grad().equal(at::tensor({0.0f, 2.0f, 2.0f, 0.0f, 0.0f}))) << x.grad();
}

TEST(FakeQuantize, PerChannelOnAnyAxis) {
  for (int64_t axis : {0, 1, 2}) {
    FakeQuantize fq(per_channel_qint8(axis));
    at::manual_seed(axis);
    const at::Tensor x = at::randn({2, 3, 4});
    const at::Tensor y = fq->forward(x);
    ASSERT_EQ(fq->scale.numel(), x.size(axis));
    const at::Tensor absmax = x.abs().amax(at::IntArrayRef{(axis + 1) % 3, (axis + 2) % 3});
    EXPECT_TRUE(fq->scale.equal(absmax / 127.5f)) << axis;
    const at::Tensor expected =
        at::fake_quantize_per_channel_affine(x, fq->scale, fq->zero_point, axis, -128, 127);
    EXPECT_TRUE(y.equal(expected)) << axis;
  }
}

TEST(FakeQuantize, EmptyTensorsPassThrough) {
  FakeQuantize fq(per_tensor_qint8());
  ScopedWarningCapture warnings;
  const at::Tensor y = fq->forward(at::empty({0, 3}));
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{0, 3}));
  EXPECT_EQ(warnings.count(), 1);  // qparams requested before any data was seen
  EXPECT_EQ(fq->scale.item<float>(), 1.0f);
}

TEST(FakeQuantize, OtherFloatTypesComputeInFloat32) {
  FakeQuantize fq(per_tensor_qint8());
  const at::Tensor x = at::tensor({-1.0, 0.3, 1.0}, at::kDouble);
  const at::Tensor y = fq->forward(x);
  EXPECT_EQ(y.scalar_type(), at::kDouble);
  const at::Tensor y32 = fake_quantize(x.to(at::kFloat), fq->scale, fq->zero_point, -1, -128, 127);
  EXPECT_TRUE(y.to(at::kFloat).equal(y32));
  EXPECT_THROW(fake_quantize(at::ones({2}, at::kInt), fq->scale, fq->zero_point, -1, -128, 127),
               QuantError);
}

TEST(Observer, NonFiniteValuesDoNotPoisonTheRange) {
  Observer obs(per_tensor_qint8());
  obs->forward(at::tensor({-1.0f, NAN, 2.0f, INFINITY, -INFINITY}));
  EXPECT_EQ(obs->min_val.item<float>(), -1.0f);
  EXPECT_EQ(obs->max_val.item<float>(), 2.0f);
  obs->forward(at::tensor({NAN, NAN}));  // nothing finite: unchanged
  EXPECT_EQ(obs->min_val.item<float>(), -1.0f);
  auto [scale, zp] = obs->calculate_qparams();
  EXPECT_EQ(scale.item<float>(), 2.0f / 127.5f);
}

TEST(Observer, PerChannelRangeOfAllNanChannelStartsAtZero) {
  Observer obs(per_channel_qint8(0));
  obs->forward(at::tensor({NAN, NAN, 1.0f, -3.0f}).reshape({2, 2}));
  EXPECT_TRUE(obs->min_val.equal(at::tensor({0.0f, -3.0f})));
  EXPECT_TRUE(obs->max_val.equal(at::tensor({0.0f, 1.0f})));
  EXPECT_THROW(obs->forward(at::ones({3, 2})), QuantError);  // channel count changed
}

TEST(Observer, NeverObservedGivesUnitScaleWithWarning) {
  Observer obs(per_channel_qint8(0));
  ScopedWarningCapture warnings;
  auto [scale, zp] = obs->calculate_qparams();
  EXPECT_EQ(scale.item<float>(), 1.0f);
  EXPECT_EQ(zp.item<int32_t>(), 0);
  EXPECT_NE(warnings.text().find("has not seen any data"), std::string::npos);
}

TEST(FakeQuantize, StateDictRoundTripRestoresEverything) {
  FakeQuantize trained(per_channel_qint8(0));
  at::manual_seed(3);
  trained->forward(at::randn({4, 6}));
  trained->forward(at::randn({4, 6}));
  trained->disable_observer();
  std::stringstream stream;
  torch::save(trained, stream);

  FakeQuantize restored(per_channel_qint8(0));
  torch::load(restored, stream);
  EXPECT_FALSE(restored->is_observer_enabled());
  EXPECT_TRUE(restored->scale.equal(trained->scale));
  EXPECT_TRUE(restored->zero_point.equal(trained->zero_point));
  EXPECT_TRUE(restored->activation_post_process->min_val.equal(
      trained->activation_post_process->min_val));
  const at::Tensor x = at::randn({4, 6});
  EXPECT_TRUE(restored->forward(x).equal(trained->forward(x)));
}

TEST(FakeQuantize, BufferNamesMatchPyTorch) {
  FakeQuantize fq(per_tensor_qint8());
  std::vector<std::string> names;
  for (const auto& item : fq->named_buffers()) names.push_back(item.key());
  EXPECT_EQ(names, (std::vector<std::string>{"fake_quant_enabled", "observer_enabled", "scale",
                                             "zero_point", "activation_post_process.min_val",
                                             "activation_post_process.max_val",
                                             "activation_post_process.eps"}));
}

}  // namespace
}  // namespace linquant

namespace linquant {
namespace {

// Sigmoid's fixed range: scale 1/256, zero point 0 on quint8, whatever the data.
TEST(FakeQuantize, FixedQParamsIgnoreTheData) {
  FakeQuantizeOptions options;
  options.fixed_qparams = QParam{1.0f / 256.0f, 0};
  FakeQuantize fq(options);
  const at::Tensor y = fq->forward(at::tensor({0.5f, 2.0f, -1.0f, 0.00390625f}));
  EXPECT_EQ(fq->scale.item<float>(), 1.0f / 256.0f);
  EXPECT_TRUE(y.equal(at::tensor({0.5f, 255.0f / 256.0f, 0.0f, 0.00390625f})));
  EXPECT_FALSE(fq->activation_post_process->has_observed());
}

}  // namespace
}  // namespace linquant

namespace linquant {
namespace {

// A shared quantizer observes once per pass, from the union of all its inputs.
TEST(FakeQuantize, SharedPassUpdatesOnceFromTheUnion) {
  FakeQuantizeOptions options;
  options.range = QuantRange::qint8();
  FakeQuantize fq(options);
  fq->begin_shared_pass();
  fq->forward(at::tensor({-1.0f, 1.0f}));
  fq->forward(at::tensor({-3.0f, 0.5f}));
  fq->end_shared_pass();
  EXPECT_EQ(fq->activation_post_process->min_val.item<float>(), -3.0f);
  EXPECT_EQ(fq->activation_post_process->max_val.item<float>(), 1.0f);
  EXPECT_EQ(fq->scale.item<float>(), 3.0f / 127.5f);  // the last call already saw the union

  // Second pass: one moving-average step toward the union [-2, 4], not two.
  fq->begin_shared_pass();
  fq->forward(at::tensor({4.0f}));
  fq->forward(at::tensor({-2.0f}));
  fq->end_shared_pass();
  EXPECT_EQ(fq->activation_post_process->min_val.item<float>(), -3.0f + 0.01f * (-2.0f - -3.0f));
  EXPECT_EQ(fq->activation_post_process->max_val.item<float>(), 1.0f + 0.01f * (4.0f - 1.0f));
}

TEST(FakeQuantize, SharedPassPerChannelUnion) {
  FakeQuantizeOptions options;
  options.range = QuantRange::qint8();
  options.ch_axis = 0;
  options.observer = ObserverType::min_max;
  FakeQuantize fq(options);
  fq->begin_shared_pass();
  fq->forward(at::tensor({1.0f, -2.0f}).reshape({2, 1}));
  fq->forward(at::tensor({-5.0f, 3.0f}).reshape({2, 1}));
  fq->end_shared_pass();
  EXPECT_TRUE(fq->activation_post_process->min_val.equal(at::tensor({-5.0f, -2.0f})));
  EXPECT_TRUE(fq->activation_post_process->max_val.equal(at::tensor({1.0f, 3.0f})));
}

}  // namespace
}  // namespace linquant
