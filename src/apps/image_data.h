// Image classification data for the commands: IDX files found in any of the usual layouts,
// normalized, optionally adapted to a model's input (channels, size), and served in batches
// whose order depends only on the seed and the epoch.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace linquant::apps {

// The four files of an IDX data set (gzipped or plain).
struct IdxFiles {
  std::string train_images, train_labels, test_images, test_labels;
};

// Finds "<split>-images-idx3-ubyte[.gz]" / "<split>-labels-idx1-ubyte[.gz]" (also the
// ".idx3-ubyte" spelling of some mirrors) in `dir` or a subfolder up to two levels down
// (torchvision's "FashionMNIST/raw"). Throws DataError naming the folder and the files
// it looked for.
IdxFiles find_idx_files(const std::string& dir);

struct ImageSet {
  at::Tensor images;  // float32 [N, C, H, W], as read (and normalized)
  at::Tensor labels;  // int64 [N]
  // The model input C, H, W that batches are adapted to (adapt_images); empty: the images'.
  std::vector<int64_t> input_shape;

  int64_t size() const { return labels.size(0); }
  int64_t num_classes() const;
  // The images at `index` (int64 [B]) or in [begin, end), as model inputs: only the batch is
  // resized and channel-repeated, so memory stays proportional to the batch size.
  at::Tensor batch(const at::Tensor& index) const;
  at::Tensor range(int64_t begin, int64_t end) const;
};

// One split in [0, 1] (DataError for missing, truncated or wrong-magic files).
ImageSet load_images(const std::string& images_path, const std::string& labels_path);

struct Normalization {
  float mean = 0.0f;
  float std = 1.0f;
};
// Statistics of the training images; the exported model expects inputs normalized with them.
Normalization measure_normalization(const at::Tensor& images);
void normalize_in_place(ImageSet& set, const Normalization& normalization);

// Makes batches of single-channel images repeated to `channels` and resized (bilinear) to
// height x width, so a data set can feed a model with another input shape. Nothing is
// computed here; DataError when the channels cannot be repeated.
void adapt_images(ImageSet& set, int64_t channels, int64_t height, int64_t width);

// The first `count` items (all if count <= 0 or larger than the set).
ImageSet take(const ImageSet& set, int64_t count);

// Sample order of one epoch: a permutation drawn from a generator seeded with (seed, epoch),
// so a run is reproducible and a resumed or repeated epoch sees the same order.
at::Tensor epoch_order(int64_t size, uint64_t seed, int64_t epoch);

int64_t num_batches(int64_t size, int64_t batch_size);

}  // namespace linquant::apps
