// IDX reader. gzread reads plain files too, so one code path serves both layouts.
#include "linquant/data/idx_dataset.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "linquant/common/error.h"

namespace linquant {
namespace {

constexpr uint32_t kUnsignedByteType = 0x08;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

void read_exact(gzFile file, void* buffer, size_t size, const std::string& path,
                const char* what) {
  size_t done = 0;
  auto* out = static_cast<char*>(buffer);
  while (done < size) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      throw DataError(path + ": cannot decompress: " + gzerror(file, &code));
    }
    if (got == 0) {
      throw DataError(path + ": file is truncated: " + what + " needs " + std::to_string(size) +
                      " bytes, found " + std::to_string(done));
    }
    done += static_cast<size_t>(got);
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
  int64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> size{};
    read_exact(file.get(), size.data(), 4, path, "the IDX header");
    shape[d] = big_endian(size);
    count *= shape[d];
  }
  at::Tensor data = at::empty(shape, at::kByte);
  read_exact(file.get(), data.data_ptr<uint8_t>(), static_cast<size_t>(count), path,
             "the IDX data");
  return data;
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
