// IDX reader. gzread reads plain files too, so one code path serves both layouts.
#include "linquant/data/idx_dataset.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "linquant/common/error.h"

namespace linquant {
namespace {

constexpr uint32_t kUnsignedByteType = 0x08;
// Larger data sets are not what this reader is for (ImageNet-sized sets are not IDX files).
constexpr uint64_t kMaxDataBytes = uint64_t{64} << 30;
constexpr uint64_t kInflateChunk = uint64_t{64} << 20;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads until `size` bytes or the end of the file; returns how many were read.
size_t read_up_to(gzFile file, void* buffer, size_t size, const std::string& path) {
  size_t done = 0;
  auto* out = static_cast<char*>(buffer);
  while (done < size) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      throw DataError(path + ": cannot decompress: " + gzerror(file, &code));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

void read_exact(gzFile file, void* buffer, size_t size, const std::string& path, const char* what) {
  const size_t done = read_up_to(file, buffer, size, path);
  if (done < size) {
    throw DataError(path + ": file is truncated: " + what + " needs " + std::to_string(size) +
                    " bytes, found " + std::to_string(done));
  }
}

uint32_t big_endian(const std::array<unsigned char, 4>& b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// Prefers the gzipped name, as Debian ships it, then the plain one.
std::string find_split_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name + ".gz", dir + "/" + name}) {
    if (std::filesystem::is_regular_file(candidate)) return candidate;
  }
  throw DataError("data set file not found: " + dir + "/" + name +
                  "[.gz] (expected an IDX data set such as MNIST or Fashion-MNIST in " + dir +
                  ")");
}

}  // namespace

at::Tensor read_idx_file(const std::string& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) {
    throw DataError(path + ": cannot open: " +
                    (errno ? std::strerror(errno) : std::string("out of memory")));
  }
  std::array<unsigned char, 4> magic{};
  read_exact(file.get(), magic.data(), 4, path, "the IDX header");
  const int rank = magic[3];
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != kUnsignedByteType || rank < 1 || rank > 4) {
    const uint32_t value = big_endian(magic);
    throw DataError(path + ": not an unsigned-byte IDX file (magic " + std::to_string(value) +
                    "; expected 2049 for labels or 2051 for images)");
  }
  std::vector<int64_t> shape(rank);
  uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> size{};
    read_exact(file.get(), size.data(), 4, path, "the IDX header");
    shape[d] = big_endian(size);
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(shape[d]), &count)) count = UINT64_MAX;
  }
  if (count == 0) {  // and a zero among huge dimensions would overflow ATen's stride arithmetic
    throw DataError(path +
                    ": the header gives a dimension of 0: no data (found by scripts/fuzz.sh)");
  }
  if (count > kMaxDataBytes) {
    throw DataError(path + ": the header claims " + std::to_string(count) +
                    " bytes of data, more than the " + std::to_string(kMaxDataBytes >> 30) +
                    " GiB linquant reads");
  }
  const auto truncated = [&](uint64_t found) {
    return DataError(path + ": file is truncated: the IDX data needs " + std::to_string(count) +
                     " bytes, found " + std::to_string(found));
  };
  // The header alone must not make us allocate: a plain file's size is known; a gzipped one
  // is inflated in chunks, so memory follows the data that is actually there.
  if (gzdirect(file.get())) {
    std::error_code error;
    const uintmax_t file_size = std::filesystem::file_size(path, error);
    const uintmax_t header = 4 + 4 * static_cast<uintmax_t>(rank);
    if (!error && file_size < header + count) {
      throw truncated(file_size - std::min(file_size, header));
    }
    at::Tensor data = at::empty(shape, at::kByte);
    read_exact(file.get(), data.data_ptr<uint8_t>(), count, path, "the IDX data");
    return data;
  }
  auto bytes = std::make_unique<std::vector<uint8_t>>();
  while (bytes->size() < count) {
    const size_t done = bytes->size();
    const size_t want = std::min<uint64_t>(count - done, kInflateChunk);
    bytes->resize(done + want);
    const size_t got = read_up_to(file.get(), bytes->data() + done, want, path);
    if (got < want) throw truncated(done + got);
  }
  std::vector<uint8_t>* owned = bytes.release();
  return at::from_blob(owned->data(), shape, [owned](void*) { delete owned; }, at::kByte);
}

ImageSplit load_idx_split(const std::string& dir, const std::string& split) {
  const std::string image_path = find_split_file(dir, split + "-images-idx3-ubyte");
  const std::string label_path = find_split_file(dir, split + "-labels-idx1-ubyte");
  const at::Tensor images = read_idx_file(image_path);
  const at::Tensor labels = read_idx_file(label_path);
  if (images.dim() != 3) {
    throw DataError(image_path + ": expected images of shape [N, H, W], got rank " +
                    std::to_string(images.dim()));
  }
  if (labels.dim() != 1 || labels.size(0) != images.size(0)) {
    throw DataError(label_path + ": " + std::to_string(labels.numel()) + " labels for " +
                    std::to_string(images.size(0)) + " images in " + image_path);
  }
  return {images.unsqueeze(1).to(at::kFloat).div_(255.0f), labels.to(at::kLong)};
}

}  // namespace linquant
