// TensorValue validation, encoding and the weight-file placement rule.
#include "linquant/export/coreml/mil_value.h"

#include <gtest/gtest.h>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

TEST(TensorValue, EncodesLittleEndianAtNaturalWidth) {
  const auto v = TensorValue::int32({2}, {1, -2});
  EXPECT_EQ(v.element_bytes(), (std::vector<std::uint8_t>{1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF}));
  EXPECT_EQ(v.integer_values(), (std::vector<std::int64_t>{1, -2}));
  const auto h = TensorValue::float16({2}, {1.0f, -2.0f});
  EXPECT_EQ(h.element_bytes(), (std::vector<std::uint8_t>{0x00, 0x3C, 0x00, 0xC0}));
  EXPECT_EQ(h.float_values(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(TensorValue::int16({1}, {-3}).integer_values(), (std::vector<std::int64_t>{-3}));
  EXPECT_EQ(TensorValue::int64({1}, {-5000000000}).integer_values(),
            (std::vector<std::int64_t>{-5000000000}));
}

TEST(TensorValue, SubBytePacking) {
  const auto v = TensorValue::int4({3}, {1, -2, 3});
  EXPECT_EQ(v.packed_bytes(), (std::vector<std::uint8_t>{0xE1, 0x03}));
  EXPECT_EQ(v.padding_bits(), 4u);
  EXPECT_EQ(v.integer_values(), (std::vector<std::int64_t>{1, -2, 3}));
  const auto u = TensorValue::uint4({2, 1}, {15, 1});
  EXPECT_EQ(u.packed_bytes(), (std::vector<std::uint8_t>{0x1F}));
  EXPECT_EQ(u.padding_bits(), 0u);
  EXPECT_EQ(TensorValue::int8({1}, {-1}).padding_bits(), 0u);
}

TEST(TensorValue, ScalarsAreRankZero) {
  const auto s = TensorValue::scalar_int32(7);
  EXPECT_TRUE(s.shape().empty());
  EXPECT_EQ(s.element_count(), 1u);
  EXPECT_EQ(TensorValue::scalar_string("int8").string_values(), (std::vector<std::string>{"int8"}));
  EXPECT_EQ(TensorValue::int32_list({1, 1}).shape(), (Shape{2}));
  EXPECT_EQ(TensorType({DType::Float16, {1, 3}}).to_string(), "fp16[1, 3]");
}

TEST(TensorValue, RejectsBadInput) {
  EXPECT_THROW(TensorValue::float32({2, 2}, {1, 2, 3}), ExportError);
  EXPECT_THROW(TensorValue::float32({-1}, {}), ExportError);
  EXPECT_THROW(TensorValue::int4({1}, {8}), ExportError);
  EXPECT_THROW(TensorValue::uint4({1}, {16}), ExportError);
  EXPECT_THROW(TensorValue::int8({1}, {1}).float_values(), ExportError);
  EXPECT_THROW(TensorValue::scalar_float32(1).integer_values(), ExportError);
  try {
    TensorValue::int4({2}, {0, 9});
    FAIL();
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
}

TEST(WeightFilePlacement, ThresholdIsTenElements) {
  for (int n : {9, 10}) {
    const bool expected = n >= 10;
    EXPECT_EQ(goes_to_weight_file(TensorValue::float32({n}, std::vector<float>(n))), expected);
    EXPECT_EQ(goes_to_weight_file(TensorValue::float16({n}, std::vector<float>(n))), expected);
    EXPECT_EQ(goes_to_weight_file(TensorValue::int8({n}, std::vector<std::int8_t>(n))), expected);
    EXPECT_EQ(goes_to_weight_file(TensorValue::uint8({n}, std::vector<std::uint8_t>(n))), expected);
    EXPECT_EQ(goes_to_weight_file(TensorValue::int4({n}, std::vector<std::int8_t>(n))), expected);
    // Types Core ML keeps inline however large they are (before iOS18 for int32).
    EXPECT_FALSE(goes_to_weight_file(TensorValue::int32({n}, std::vector<std::int32_t>(n))));
    EXPECT_FALSE(goes_to_weight_file(TensorValue::boolean({n}, std::vector<bool>(n))));
  }
}

}  // namespace
}  // namespace linquant::coreml
