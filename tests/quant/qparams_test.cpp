// Hand-computed scales and zero points for each range and scheme.
#include "linquant/quant/qparams.h"

#include <gtest/gtest.h>

#include "linquant/common/error.h"

namespace linquant {
namespace {

TEST(QuantRange, RangesAndSymmetricZeroPoints) {
  EXPECT_EQ(quant_range(WeightDtype::qint8), (QuantRange{-128, 127, false, false}));
  EXPECT_EQ(quant_range(WeightDtype::quint8), (QuantRange{0, 255, true, false}));
  EXPECT_EQ(quant_range(WeightDtype::qint4), (QuantRange{-8, 7, false, true}));
  EXPECT_EQ(quant_range(WeightDtype::quint4), (QuantRange{0, 15, true, true}));
  EXPECT_EQ(quant_range(ActivationDtype::quint8), QuantRange::quint8());
  EXPECT_EQ(QuantRange::qint8().symmetric_zero_point(), 0);
  EXPECT_EQ(QuantRange::quint8().symmetric_zero_point(), 128);
  EXPECT_EQ(QuantRange::qint4().symmetric_zero_point(), 0);
  EXPECT_EQ(QuantRange::quint4().symmetric_zero_point(), 7);
  EXPECT_EQ(QuantRange::qint8().n_bits(), 8);
  EXPECT_EQ(QuantRange::quint4().n_bits(), 4);
  EXPECT_THROW(quant_range(WeightDtype::float32), QuantError);
  EXPECT_THROW(quant_range(ActivationDtype::float32), QuantError);
}

TEST(QParams, SymmetricUsesHalfTheLevels) {
  // absmax 1.275 over 127.5 levels: 0.01 (as float32 division).
  const QParam q = compute_qparam(-1.275f, 0.5f, QuantRange::qint8(), QuantizationScheme::symmetric);
  EXPECT_EQ(q.scale, 1.275f / 127.5f);
  EXPECT_EQ(q.zero_point, 0);
  const QParam u = compute_qparam(-0.2f, 3.0f, QuantRange::quint8(), QuantizationScheme::symmetric);
  EXPECT_EQ(u.scale, 3.0f / 127.5f);
  EXPECT_EQ(u.zero_point, 128);
  const QParam four = compute_qparam(-0.75f, 0.25f, QuantRange::qint4(), QuantizationScheme::symmetric);
  EXPECT_EQ(four.scale, 0.1f);  // 0.75 / 7.5
}

TEST(QParams, AffineZeroPointRoundsHalfToEven) {
  // [-1, 3] on quint8: scale 4/255; -(-1)/scale = 63.75 -> 64.
  const QParam q = compute_qparam(-1.0f, 3.0f, QuantRange::quint8(), QuantizationScheme::affine);
  EXPECT_EQ(q.scale, 4.0f / 255.0f);
  EXPECT_EQ(q.zero_point, 64);
  // [-0.5, 15 - 0.5] on quint4 with scale 1: zero point 0.5 -> 0 (tie to even).
  const QParam tie = compute_qparam(-0.5f, 14.5f, QuantRange::quint4(), QuantizationScheme::affine);
  EXPECT_EQ(tie.scale, 1.0f);
  EXPECT_EQ(tie.zero_point, 0);
  // [-1.5, 13.5]: 1.5 -> 2.
  const QParam tie2 = compute_qparam(-1.5f, 13.5f, QuantRange::quint4(), QuantizationScheme::affine);
  EXPECT_EQ(tie2.zero_point, 2);
}

TEST(QParams, RangeAlwaysContainsZero) {
  const QParam pos = compute_qparam(2.0f, 4.0f, QuantRange::quint8(), QuantizationScheme::affine);
  EXPECT_EQ(pos.scale, 4.0f / 255.0f);
  EXPECT_EQ(pos.zero_point, 0);
  const QParam neg = compute_qparam(-4.0f, -2.0f, QuantRange::quint8(), QuantizationScheme::affine);
  EXPECT_EQ(neg.zero_point, 255);
}

TEST(QParams, EmptyRangeGivesEpsScale) {
  const QParam q = compute_qparam(0.0f, 0.0f, QuantRange::qint8(), QuantizationScheme::symmetric);
  EXPECT_EQ(q.scale, kQParamsEps);
  EXPECT_EQ(kQParamsEps, 1.1920928955078125e-07f);
  const QParam a = compute_qparam(0.0f, 0.0f, QuantRange::quint8(), QuantizationScheme::affine);
  EXPECT_EQ(a.scale, kQParamsEps);
  EXPECT_EQ(a.zero_point, 0);
}

TEST(QParams, InvertedRangeIsAnError) {
  EXPECT_THROW(compute_qparam(1.0f, -1.0f, QuantRange::qint8(), QuantizationScheme::affine),
               QuantError);
}

}  // namespace
}  // namespace linquant
