// Typed constant tensors for MIL programs (TensorValue) and the type of any MIL tensor
// (TensorType), plus the rule that decides which constants live in the weight file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "linquant/export/coreml/dtype.h"

namespace linquant::coreml {

using Shape = std::vector<std::int64_t>;

// Rank 0 (empty shape) is a scalar.
struct TensorType {
  DType dtype = DType::Float32;
  Shape shape;

  std::size_t rank() const { return shape.size(); }
  std::int64_t element_count() const;
  std::string to_string() const;  // "fp16[1, 3, 8, 8]", "int32[]"
};

bool operator==(const TensorType& a, const TensorType& b);
bool operator!=(const TensorType& a, const TensorType& b);

// A constant tensor with its elements stored as little-endian bytes at the type's natural width
// (one byte per element for int4/uint4, two's complement for int4). Factories validate the
// element count against the shape and the value range of sub-byte types, so a TensorValue is
// always serializable.
class TensorValue {
 public:
  static TensorValue float32(Shape shape, const std::vector<float>& values);
  // Rounds each value to binary16 (nearest, ties to even).
  static TensorValue float16(Shape shape, const std::vector<float>& values);
  static TensorValue float16_bits(Shape shape, const std::vector<std::uint16_t>& bits);
  static TensorValue int8(Shape shape, const std::vector<std::int8_t>& values);
  static TensorValue uint8(Shape shape, const std::vector<std::uint8_t>& values);
  static TensorValue int4(Shape shape, const std::vector<std::int8_t>& values);    // [-8, 7]
  static TensorValue uint4(Shape shape, const std::vector<std::uint8_t>& values);  // [0, 15]
  static TensorValue int16(Shape shape, const std::vector<std::int16_t>& values);
  static TensorValue uint16(Shape shape, const std::vector<std::uint16_t>& values);
  static TensorValue int32(Shape shape, const std::vector<std::int32_t>& values);
  static TensorValue int64(Shape shape, const std::vector<std::int64_t>& values);
  static TensorValue boolean(Shape shape, const std::vector<bool>& values);
  static TensorValue strings(Shape shape, std::vector<std::string> values);

  // Rank-0 tensors.
  static TensorValue scalar_float32(float value);
  static TensorValue scalar_float16(float value);
  static TensorValue scalar_int8(std::int8_t value);
  static TensorValue scalar_uint8(std::uint8_t value);
  static TensorValue scalar_int32(std::int32_t value);
  static TensorValue scalar_bool(bool value);
  static TensorValue scalar_string(std::string value);

  // Rank-1 int32 tensor, the usual form of strides, pads, axes.
  static TensorValue int32_list(const std::vector<std::int32_t>& values);

  DType dtype() const { return type_.dtype; }
  const Shape& shape() const { return type_.shape; }
  const TensorType& type() const { return type_; }
  std::size_t element_count() const { return count_; }

  // Natural-width little-endian element bytes (one byte per element for sub-byte types).
  const std::vector<std::uint8_t>& element_bytes() const { return bytes_; }
  // The storage form: sub-byte types packed (element i at bit (bits * i) % 8 of byte
  // bits * i / 8, low bits first); other types equal element_bytes().
  std::vector<std::uint8_t> packed_bytes() const;
  // Unused high bits of the last packed byte (4 for an odd number of int4 elements).
  std::uint64_t padding_bits() const;
  const std::vector<std::string>& string_values() const { return strings_; }

  // Decoded elements, for serialization and tests; each throws if the dtype does not match.
  std::vector<float> float_values() const;            // fp32 and fp16
  std::vector<std::int64_t> integer_values() const;   // every integer dtype and bool

 private:
  TensorValue(DType dtype, Shape shape);

  TensorType type_;
  std::size_t count_ = 0;
  std::vector<std::uint8_t> bytes_;
  std::vector<std::string> strings_;
};

// Core ML's rule (coremltools should_use_weight_file): constants of at least this many elements
// with a blob-storable dtype go to weights/weight.bin; everything else is written inline.
constexpr std::size_t kMinWeightFileElements = 10;

// fp16, fp32, int8, uint8, int4, uint4 tensors with >= kMinWeightFileElements elements
// (coremltools treats int4/uint4 like int8 here). From iOS18 coremltools also moves large
// int16/uint16/int32/uint32 constants to the blob; linquant keeps those inline on every target,
// which Core ML reads as well.
bool goes_to_weight_file(const TensorValue& value);

}  // namespace linquant::coreml
