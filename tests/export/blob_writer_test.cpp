// Byte layout of the MIL blob storage v2 writer, against hand-computed files.
#include "linquant/export/coreml/blob_writer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

std::uint64_t le(const std::vector<std::uint8_t>& bytes, std::size_t at, int width) {
  std::uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= static_cast<std::uint64_t>(bytes.at(at + i)) << (8 * i);
  return value;
}

std::vector<std::uint8_t> slice(const std::vector<std::uint8_t>& bytes, std::size_t at,
                                std::size_t n) {
  return {bytes.begin() + at, bytes.begin() + at + n};
}

TEST(BlobWriter, EmptyFileIsJustTheHeader) {
  BlobWriter w;
  std::vector<std::uint8_t> expected(64, 0);
  expected[4] = 2;  // version 2, count 0
  EXPECT_EQ(w.bytes(), expected);
  EXPECT_EQ(w.blob_count(), 0u);
}

TEST(BlobWriter, OneFloat32BlobHasExactBytes) {
  BlobWriter w;
  const std::uint64_t offset = w.write_float32({1.0f, -2.0f, 0.5f});
  EXPECT_EQ(offset, 64u);
  const auto& b = w.bytes();
  ASSERT_EQ(b.size(), 128u + 12u);

  std::vector<std::uint8_t> header(64, 0);
  header[0] = 1;  // count
  header[4] = 2;  // version
  EXPECT_EQ(slice(b, 0, 64), header);

  std::vector<std::uint8_t> meta(64, 0);
  const std::uint8_t fixed[] = {0xEF, 0xBE, 0xAD, 0xDE,   // sentinel
                                2,    0,    0,    0,      // Float32
                                12,   0,    0,    0, 0, 0, 0, 0,   // size in bytes
                                128,  0,    0,    0, 0, 0, 0, 0};  // data offset
  std::memcpy(meta.data(), fixed, sizeof fixed);
  EXPECT_EQ(slice(b, 64, 64), meta);

  const std::vector<std::uint8_t> data = {0x00, 0x00, 0x80, 0x3F,   // 1.0f
                                          0x00, 0x00, 0x00, 0xC0,   // -2.0f
                                          0x00, 0x00, 0x00, 0x3F};  // 0.5f
  EXPECT_EQ(slice(b, 128, 12), data);
}

TEST(BlobWriter, SecondBlobStartsAtNextAlignedOffset) {
  BlobWriter w;
  EXPECT_EQ(w.write_int8({1, 2, 3, 4, 5}), 64u);          // data 128..133
  EXPECT_EQ(w.write_uint8({9, 8, 7}), 192u);               // next multiple of 64 after 133
  EXPECT_EQ(w.bytes().size(), 192u + 64u + 3u);           // no padding after the last payload
  EXPECT_EQ(le(w.bytes(), 0, 4), 2u);                     // header count rewritten
  EXPECT_EQ(le(w.bytes(), 192 + 4, 4), 3u);               // UInt8
  EXPECT_EQ(le(w.bytes(), 192 + 16, 8), 256u);            // data right after the metadata
  for (std::size_t i = 133; i < 192; ++i) EXPECT_EQ(w.bytes()[i], 0) << i;
  EXPECT_EQ(slice(w.bytes(), 256, 3), (std::vector<std::uint8_t>{9, 8, 7}));
}

TEST(BlobWriter, PayloadEndingOnABoundaryNeedsNoGap) {
  BlobWriter w;
  EXPECT_EQ(w.write_float32(std::vector<float>(16, 1.0f)), 64u);  // 64 bytes: 128..192
  EXPECT_EQ(w.write_float32(std::vector<float>(16, 2.0f)), 192u);
}

TEST(BlobWriter, Int4PacksLowNibbleFirstWithPaddingBits) {
  BlobWriter w;
  const std::uint64_t offset = w.write_int4({1, -2, 3});
  const auto& b = w.bytes();
  EXPECT_EQ(le(b, offset + 4, 4), 8u);    // Int4
  EXPECT_EQ(le(b, offset + 8, 8), 2u);    // two packed bytes
  EXPECT_EQ(le(b, offset + 24, 8), 4u);   // the last byte's high nibble is padding
  // 1 -> 0x1 (low), -2 -> 0xE (high): 0xE1; 3 -> 0x3 in the next low nibble: 0x03.
  EXPECT_EQ(slice(b, offset + 64, 2), (std::vector<std::uint8_t>{0xE1, 0x03}));
}

TEST(BlobWriter, UInt4AndEvenInt4HaveNoPadding) {
  BlobWriter w;
  const std::uint64_t u4 = w.write_uint4({15, 0, 9, 6});
  EXPECT_EQ(le(w.bytes(), u4 + 4, 4), 11u);
  EXPECT_EQ(le(w.bytes(), u4 + 24, 8), 0u);
  EXPECT_EQ(slice(w.bytes(), u4 + 64, 2), (std::vector<std::uint8_t>{0x0F, 0x69}));
  EXPECT_THROW(w.write_uint4({16}), ExportError);
  EXPECT_THROW(w.write_int4({8}), ExportError);
  EXPECT_THROW(w.write_int4({-9}), ExportError);
}

TEST(BlobWriter, Float16IsStoredAsRawBits) {
  BlobWriter w;
  const std::uint64_t offset = w.write_float16_bits({0x3C00, 0xC000});
  EXPECT_EQ(le(w.bytes(), offset + 4, 4), 1u);
  EXPECT_EQ(slice(w.bytes(), offset + 64, 4), (std::vector<std::uint8_t>{0x00, 0x3C, 0x00, 0xC0}));
}

TEST(BlobWriter, IdenticalBlobsAreStoredOnce) {
  BlobWriter w;
  const std::uint64_t a = w.write_int8({1, 2, 3});
  const std::uint64_t b = w.write_uint8({1, 2, 3});  // same bytes, other type: a new blob
  const std::uint64_t c = w.write_int8({1, 2, 3});
  EXPECT_NE(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(w.blob_count(), 2u);
  EXPECT_EQ(le(w.bytes(), 0, 4), 2u);
  // Same packed bytes but different padding are different blobs (3 vs 4 int4 elements).
  const std::uint64_t d = w.write_int4({1, 2, 3});
  const std::uint64_t e = w.write_int4({1, 2, 3, 0});
  EXPECT_NE(d, e);
}

TEST(BlobWriter, WritesTensorValuesAndRejectsOtherTypes) {
  BlobWriter w;
  EXPECT_EQ(w.write(TensorValue::int8({2, 2}, {1, 2, 3, 4})), 64u);
  EXPECT_THROW(w.write(TensorValue::int32({2}, {1, 2})), ExportError);
  EXPECT_THROW(w.write_payload(BlobDataType::Int8, {}, 0), ExportError);
  EXPECT_TRUE(BlobWriter::can_store(DType::Int4));
  EXPECT_FALSE(BlobWriter::can_store(DType::Int32));
}

}  // namespace
}  // namespace linquant::coreml
