// IDX image data sets (MNIST, Fashion-MNIST): gzipped or plain files, read with zlib.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace linquant {

// Debian's dataset-fashion-mnist installs here.
constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// One split: images as float32 [N, 1, H, W] scaled to [0, 1], labels as int64 [N].
struct ImageSplit {
  at::Tensor images;
  at::Tensor labels;
};

// Reads an IDX file (magic 0x0803 images / 0x0801 labels, big-endian sizes) into a uint8
// tensor of its shape. Throws DataError naming the file for a missing file, wrong magic,
// or fewer bytes than the header promises.
at::Tensor read_idx_file(const std::string& path);

// Reads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels, split = "train" or
// "t10k"; checks that both have the same number of items and labels are below 256.
ImageSplit load_idx_split(const std::string& dir, const std::string& split);

}  // namespace linquant
