// Builds a MIL blob storage file (format version 2, the weights/weight.bin of an ML Program) in
// memory: a 64-byte header, then for each blob a 64-byte metadata record at a 64-byte-aligned
// offset followed directly by the payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "linquant/export/coreml/mil_value.h"

namespace linquant::coreml {

// Codes of the metadata record's data type field (MILBlob BlobDataType).
enum class BlobDataType : std::uint32_t {
  Float16 = 1,
  Float32 = 2,
  UInt8 = 3,
  Int8 = 4,
  Int4 = 8,
  UInt4 = 11,
};

class BlobWriter {
 public:
  static constexpr std::uint32_t kFormatVersion = 2;
  static constexpr std::uint32_t kSentinel = 0xDEADBEEF;
  static constexpr std::size_t kHeaderSize = 64;
  static constexpr std::size_t kMetadataSize = 64;
  static constexpr std::size_t kAlignment = 64;

  BlobWriter();

  // Each returns the offset of the blob's metadata record: the value a BlobFileValue stores.
  std::uint64_t write_float16_bits(const std::vector<std::uint16_t>& bits);
  std::uint64_t write_float32(const std::vector<float>& values);
  std::uint64_t write_uint8(const std::vector<std::uint8_t>& values);
  std::uint64_t write_int8(const std::vector<std::int8_t>& values);
  std::uint64_t write_int4(const std::vector<std::int8_t>& values);     // each in [-8, 7]
  std::uint64_t write_uint4(const std::vector<std::uint8_t>& values);   // each in [0, 15]
  // A TensorValue of one of the types above (shape is not stored; the proto carries it).
  std::uint64_t write(const TensorValue& value);

  // Lowest level: an already-encoded payload. A payload identical (type, bytes, padding) to one
  // written before is not stored twice; the earlier blob's offset is returned.
  std::uint64_t write_payload(BlobDataType type, const std::vector<std::uint8_t>& payload,
                              std::uint64_t padding_bits);

  std::uint32_t blob_count() const { return count_; }
  const std::vector<std::uint8_t>& bytes() const { return file_; }

  static bool can_store(DType dtype);

 private:
  std::vector<std::uint8_t> file_;
  std::uint32_t count_ = 0;
  // Payload hash -> metadata offsets with that hash, for deduplication.
  std::unordered_multimap<std::size_t, std::uint64_t> by_hash_;
};

}  // namespace linquant::coreml
