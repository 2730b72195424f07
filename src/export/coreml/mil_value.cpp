// TensorValue construction (validated, little-endian regardless of host) and decoding.
#include "linquant/export/coreml/mil_value.h"

#include <cstring>
#include <sstream>

#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/half.h"

namespace linquant::coreml {
namespace {

void append_le(std::vector<std::uint8_t>& out, std::uint64_t value, int byte_count) {
  for (int i = 0; i < byte_count; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

std::uint64_t read_le(const std::uint8_t* p, int byte_count) {
  std::uint64_t value = 0;
  for (int i = 0; i < byte_count; ++i) value |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return value;
}

std::size_t checked_count(const Shape& shape, std::size_t given, DType dtype) {
  std::size_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) {
      throw ExportError("TensorValue: shape " + TensorType{dtype, shape}.to_string() +
                        " has a negative dimension");
    }
    count *= static_cast<std::size_t>(d);
  }
  if (count != given) {
    throw ExportError("TensorValue: shape " + TensorType{dtype, shape}.to_string() + " holds " +
                      std::to_string(count) + " elements but " + std::to_string(given) +
                      " values were given");
  }
  return count;
}

}  // namespace

std::int64_t TensorType::element_count() const {
  std::int64_t count = 1;
  for (std::int64_t d : shape) count *= d;
  return count;
}

std::string TensorType::to_string() const {
  std::ostringstream out;
  out << dtype_name(dtype) << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

bool operator==(const TensorType& a, const TensorType& b) {
  return a.dtype == b.dtype && a.shape == b.shape;
}
bool operator!=(const TensorType& a, const TensorType& b) { return !(a == b); }

TensorValue::TensorValue(DType dtype, Shape shape) : type_{dtype, std::move(shape)} {}

TensorValue TensorValue::float32(Shape shape, const std::vector<float>& values) {
  TensorValue t(DType::Float32, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  t.bytes_.reserve(values.size() * 4);
  for (float v : values) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    append_le(t.bytes_, bits, 4);
  }
  return t;
}

TensorValue TensorValue::float16(Shape shape, const std::vector<float>& values) {
  std::vector<std::uint16_t> bits;
  bits.reserve(values.size());
  for (float v : values) bits.push_back(float_to_half_bits(v));
  return float16_bits(std::move(shape), bits);
}

TensorValue TensorValue::float16_bits(Shape shape, const std::vector<std::uint16_t>& bits) {
  TensorValue t(DType::Float16, std::move(shape));
  t.count_ = checked_count(t.shape(), bits.size(), t.dtype());
  t.bytes_.reserve(bits.size() * 2);
  for (std::uint16_t b : bits) append_le(t.bytes_, b, 2);
  return t;
}

TensorValue TensorValue::int8(Shape shape, const std::vector<std::int8_t>& values) {
  TensorValue t(DType::Int8, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::int8_t v : values) t.bytes_.push_back(static_cast<std::uint8_t>(v));
  return t;
}

TensorValue TensorValue::uint8(Shape shape, const std::vector<std::uint8_t>& values) {
  TensorValue t(DType::UInt8, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  t.bytes_ = values;
  return t;
}

TensorValue TensorValue::int4(Shape shape, const std::vector<std::int8_t>& values) {
  TensorValue t(DType::Int4, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] < -8 || values[i] > 7) {
      throw ExportError("TensorValue::int4: element " + std::to_string(i) + " is " +
                        std::to_string(values[i]) + ", outside [-8, 7]");
    }
    t.bytes_.push_back(static_cast<std::uint8_t>(values[i]));
  }
  return t;
}

TensorValue TensorValue::uint4(Shape shape, const std::vector<std::uint8_t>& values) {
  TensorValue t(DType::UInt4, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] > 15) {
      throw ExportError("TensorValue::uint4: element " + std::to_string(i) + " is " +
                        std::to_string(values[i]) + ", outside [0, 15]");
    }
  }
  t.bytes_ = values;
  return t;
}

TensorValue TensorValue::int16(Shape shape, const std::vector<std::int16_t>& values) {
  TensorValue t(DType::Int16, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::int16_t v : values) append_le(t.bytes_, static_cast<std::uint16_t>(v), 2);
  return t;
}

TensorValue TensorValue::uint16(Shape shape, const std::vector<std::uint16_t>& values) {
  TensorValue t(DType::UInt16, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::uint16_t v : values) append_le(t.bytes_, v, 2);
  return t;
}

TensorValue TensorValue::int32(Shape shape, const std::vector<std::int32_t>& values) {
  TensorValue t(DType::Int32, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::int32_t v : values) append_le(t.bytes_, static_cast<std::uint32_t>(v), 4);
  return t;
}

TensorValue TensorValue::int64(Shape shape, const std::vector<std::int64_t>& values) {
  TensorValue t(DType::Int64, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (std::int64_t v : values) append_le(t.bytes_, static_cast<std::uint64_t>(v), 8);
  return t;
}

TensorValue TensorValue::boolean(Shape shape, const std::vector<bool>& values) {
  TensorValue t(DType::Bool, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  for (bool v : values) t.bytes_.push_back(v ? 1 : 0);
  return t;
}

TensorValue TensorValue::strings(Shape shape, std::vector<std::string> values) {
  TensorValue t(DType::String, std::move(shape));
  t.count_ = checked_count(t.shape(), values.size(), t.dtype());
  t.strings_ = std::move(values);
  return t;
}

TensorValue TensorValue::scalar_float32(float value) { return float32({}, {value}); }
TensorValue TensorValue::scalar_float16(float value) { return float16({}, {value}); }
TensorValue TensorValue::scalar_int8(std::int8_t value) { return int8({}, {value}); }
TensorValue TensorValue::scalar_uint8(std::uint8_t value) { return uint8({}, {value}); }
TensorValue TensorValue::scalar_int32(std::int32_t value) { return int32({}, {value}); }
TensorValue TensorValue::scalar_bool(bool value) { return boolean({}, {value}); }
TensorValue TensorValue::scalar_string(std::string value) {
  return strings({}, {std::move(value)});
}

TensorValue TensorValue::int32_list(const std::vector<std::int32_t>& values) {
  return int32({static_cast<std::int64_t>(values.size())}, values);
}

std::vector<std::uint8_t> TensorValue::packed_bytes() const {
  if (!is_sub_byte(dtype())) return bytes_;
  // 4-bit: two elements per byte, the even-indexed one in the low nibble.
  std::vector<std::uint8_t> packed((count_ + 1) / 2, 0);
  for (std::size_t i = 0; i < count_; ++i) {
    packed[i / 2] |= static_cast<std::uint8_t>((bytes_[i] & 0x0Fu) << (4 * (i % 2)));
  }
  return packed;
}

std::uint64_t TensorValue::padding_bits() const {
  if (!is_sub_byte(dtype())) return 0;
  const std::uint64_t bits = static_cast<std::uint64_t>(count_) * 4;
  return (8 - bits % 8) % 8;
}

std::vector<float> TensorValue::float_values() const {
  std::vector<float> out;
  out.reserve(count_);
  if (dtype() == DType::Float32) {
    for (std::size_t i = 0; i < count_; ++i) {
      const auto bits = static_cast<std::uint32_t>(read_le(&bytes_[4 * i], 4));
      float v = 0.0f;
      std::memcpy(&v, &bits, sizeof v);
      out.push_back(v);
    }
  } else if (dtype() == DType::Float16) {
    for (std::size_t i = 0; i < count_; ++i) {
      out.push_back(half_bits_to_float(static_cast<std::uint16_t>(read_le(&bytes_[2 * i], 2))));
    }
  } else {
    throw ExportError("TensorValue::float_values: dtype is " + dtype_name(dtype()) +
                      ", not fp16 or fp32");
  }
  return out;
}

std::vector<std::int64_t> TensorValue::integer_values() const {
  if (is_float(dtype()) || dtype() == DType::String) {
    throw ExportError("TensorValue::integer_values: dtype is " + dtype_name(dtype()) +
                      ", not an integer type");
  }
  // Sub-byte elements are held one per byte, so the stride is at least one byte.
  const int width = is_sub_byte(dtype()) ? 1 : dtype_bits(dtype()) / 8;
  const bool is_signed = dtype() == DType::Int4 || dtype() == DType::Int8 ||
                         dtype() == DType::Int16 || dtype() == DType::Int32 ||
                         dtype() == DType::Int64;
  std::vector<std::int64_t> out;
  out.reserve(count_);
  for (std::size_t i = 0; i < count_; ++i) {
    const std::uint64_t raw = read_le(&bytes_[i * width], width);
    if (is_signed && width < 8) {
      // Sign-extend from the stored width (int4 is stored sign-extended to a byte).
      const std::uint64_t sign_bit = std::uint64_t{1} << (8 * width - 1);
      out.push_back(static_cast<std::int64_t>((raw ^ sign_bit) - sign_bit));
    } else {
      out.push_back(static_cast<std::int64_t>(raw));
    }
  }
  return out;
}

bool goes_to_weight_file(const TensorValue& value) {
  switch (value.dtype()) {
    case DType::Float16:
    case DType::Float32:
    case DType::Int8:
    case DType::UInt8:
    case DType::Int4:
    case DType::UInt4: return value.element_count() >= kMinWeightFileElements;
    default: return false;
  }
}

}  // namespace linquant::coreml
