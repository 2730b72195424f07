// MIL blob storage v2 writer. Field layout of the header and of each metadata record is written
// byte by byte in little-endian order, so the file does not depend on the host's struct layout.
#include "linquant/export/coreml/blob_writer.h"

#include <algorithm>
#include <functional>
#include <string_view>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

// Offsets inside the 64-byte storage header and blob metadata records.
constexpr std::size_t kHeaderCount = 0;
constexpr std::size_t kHeaderVersion = 4;
constexpr std::size_t kMetaSentinel = 0;
constexpr std::size_t kMetaDataType = 4;
constexpr std::size_t kMetaSize = 8;
constexpr std::size_t kMetaOffset = 16;
constexpr std::size_t kMetaPaddingBits = 24;

void put_le(std::vector<std::uint8_t>& file, std::size_t at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) file[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

std::uint64_t get_le(const std::vector<std::uint8_t>& file, std::size_t at, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(file[at + i]) << (8 * i);
  return value;
}

std::size_t payload_hash(BlobDataType type, const std::vector<std::uint8_t>& payload,
                         std::uint64_t padding_bits) {
  const std::string_view bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
  return std::hash<std::string_view>{}(bytes) ^
         (static_cast<std::size_t>(type) * 0x9E3779B97F4A7C15ull) ^ (padding_bits << 56);
}

}  // namespace

BlobWriter::BlobWriter() : file_(kHeaderSize, 0) {
  put_le(file_, kHeaderCount, 0, 4);
  put_le(file_, kHeaderVersion, kFormatVersion, 4);
}

std::uint64_t BlobWriter::write_payload(BlobDataType type, const std::vector<std::uint8_t>& payload,
                                        std::uint64_t padding_bits) {
  if (payload.empty()) throw ExportError("BlobWriter: refusing to store an empty blob");
  if (padding_bits > 7) {
    throw ExportError("BlobWriter: padding of " + std::to_string(padding_bits) +
                      " bits is not below one byte");
  }

  const std::size_t hash = payload_hash(type, payload, padding_bits);
  const auto [first, last] = by_hash_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const std::size_t meta = it->second;
    if (get_le(file_, meta + kMetaDataType, 4) == static_cast<std::uint32_t>(type) &&
        get_le(file_, meta + kMetaSize, 8) == payload.size() &&
        get_le(file_, meta + kMetaPaddingBits, 8) == padding_bits &&
        std::equal(payload.begin(), payload.end(), file_.begin() + meta + kMetadataSize)) {
      return meta;
    }
  }

  // The gap up to the aligned offset is zero-filled, as the file a seeking writer leaves.
  const std::size_t meta = (file_.size() + kAlignment - 1) / kAlignment * kAlignment;
  const std::size_t data = meta + kMetadataSize;
  file_.resize(data + payload.size(), 0);
  put_le(file_, meta + kMetaSentinel, kSentinel, 4);
  put_le(file_, meta + kMetaDataType, static_cast<std::uint32_t>(type), 4);
  put_le(file_, meta + kMetaSize, payload.size(), 8);
  put_le(file_, meta + kMetaOffset, data, 8);
  put_le(file_, meta + kMetaPaddingBits, padding_bits, 8);
  std::copy(payload.begin(), payload.end(), file_.begin() + data);

  ++count_;
  put_le(file_, kHeaderCount, count_, 4);
  by_hash_.emplace(hash, meta);
  return meta;
}

std::uint64_t BlobWriter::write_float16_bits(const std::vector<std::uint16_t>& bits) {
  return write(TensorValue::float16_bits({static_cast<std::int64_t>(bits.size())}, bits));
}

std::uint64_t BlobWriter::write_float32(const std::vector<float>& values) {
  return write(TensorValue::float32({static_cast<std::int64_t>(values.size())}, values));
}

std::uint64_t BlobWriter::write_uint8(const std::vector<std::uint8_t>& values) {
  return write_payload(BlobDataType::UInt8, values, 0);
}

std::uint64_t BlobWriter::write_int8(const std::vector<std::int8_t>& values) {
  return write(TensorValue::int8({static_cast<std::int64_t>(values.size())}, values));
}

std::uint64_t BlobWriter::write_int4(const std::vector<std::int8_t>& values) {
  return write(TensorValue::int4({static_cast<std::int64_t>(values.size())}, values));
}

std::uint64_t BlobWriter::write_uint4(const std::vector<std::uint8_t>& values) {
  return write(TensorValue::uint4({static_cast<std::int64_t>(values.size())}, values));
}

std::uint64_t BlobWriter::write(const TensorValue& value) {
  switch (value.dtype()) {
    case DType::Float16:
      return write_payload(BlobDataType::Float16, value.element_bytes(), 0);
    case DType::Float32:
      return write_payload(BlobDataType::Float32, value.element_bytes(), 0);
    case DType::UInt8: return write_payload(BlobDataType::UInt8, value.element_bytes(), 0);
    case DType::Int8: return write_payload(BlobDataType::Int8, value.element_bytes(), 0);
    case DType::Int4:
      return write_payload(BlobDataType::Int4, value.packed_bytes(), value.padding_bits());
    case DType::UInt4:
      return write_payload(BlobDataType::UInt4, value.packed_bytes(), value.padding_bits());
    default:
      throw ExportError("BlobWriter: " + value.type().to_string() +
                        " cannot be stored in a weight blob (fp16, fp32, int8, uint8, int4, "
                        "uint4 only)");
  }
}

bool BlobWriter::can_store(DType dtype) {
  switch (dtype) {
    case DType::Float16:
    case DType::Float32:
    case DType::UInt8:
    case DType::Int8:
    case DType::Int4:
    case DType::UInt4: return true;
    default: return false;
  }
}

}  // namespace linquant::coreml
