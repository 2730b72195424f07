// IDX data for the commands (the reader itself is the library's data layer).
#include "image_data.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "linquant/common/error.h"
#include "linquant/data/idx_dataset.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace {

// Spellings of one IDX file: Debian and the original MNIST site ("train-images-idx3-ubyte")
// and some mirrors ("train-images.idx3-ubyte"), each gzipped or plain.
std::vector<std::string> spellings(const std::string& split, const std::string& kind) {
  const std::string rank = kind == "images" ? "idx3" : "idx1";
  std::vector<std::string> names;
  for (const char* separator : {"-", "."}) {
    const std::string base = split + "-" + kind + separator + rank + "-ubyte";
    names.push_back(base + ".gz");
    names.push_back(base);
  }
  return names;
}

std::string find_in(const fs::path& dir, const std::string& split, const std::string& kind) {
  for (const std::string& name : spellings(split, kind)) {
    std::error_code error;
    if (fs::is_regular_file(dir / name, error)) return (dir / name).string();
  }
  return "";
}

// The folders searched, nearest first: dir, its subfolders, and theirs.
std::vector<fs::path> candidate_dirs(const fs::path& dir) {
  std::vector<fs::path> dirs{dir};
  for (size_t level = 0, begin = 0; level < 2; ++level) {
    const size_t end = dirs.size();
    for (size_t i = begin; i < end; ++i) {
      std::error_code error;
      std::vector<fs::path> children;
      for (fs::directory_iterator it(dirs[i], error), last; !error && it != last;
           it.increment(error)) {
        if (it->is_directory(error)) children.push_back(it->path());
      }
      std::sort(children.begin(), children.end());
      dirs.insert(dirs.end(), children.begin(), children.end());
    }
    begin = end;
  }
  return dirs;
}

// A batch of stored images as model inputs of `shape` (C, H, W; empty: as stored). Every
// image is resized on its own, so a batch gets the values the whole set would.
at::Tensor as_model_inputs(const at::Tensor& images, const std::vector<int64_t>& shape) {
  if (shape.empty()) return images;
  at::Tensor out = images;
  if (out.size(2) != shape[1] || out.size(3) != shape[2]) {
    out = at::upsample_bilinear2d(out, {shape[1], shape[2]}, /*align_corners=*/false);
  }
  if (out.size(1) != shape[0]) {
    out = out.expand({out.size(0), shape[0], shape[1], shape[2]}).contiguous();
  }
  return out;
}

}  // namespace

IdxFiles find_idx_files(const std::string& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    throw DataError("data set folder not found: " + dir +
                    " (expected an IDX data set such as Fashion-MNIST; Debian's "
                    "dataset-fashion-mnist installs one in " +
                    kDefaultFashionMnistDir + ")");
  }
  if (!fs::is_directory(dir, error)) throw DataError("--data " + dir + " is not a folder");
  for (const fs::path& candidate : candidate_dirs(dir)) {
    IdxFiles files{find_in(candidate, "train", "images"), find_in(candidate, "train", "labels"),
                   find_in(candidate, "t10k", "images"), find_in(candidate, "t10k", "labels")};
    const int found = !files.train_images.empty() + !files.train_labels.empty() +
                      !files.test_images.empty() + !files.test_labels.empty();
    if (found == 4) return files;
    if (found > 0) {
      std::string missing;
      const std::pair<const std::string*, const char*> parts[] = {
          {&files.train_images, "train-images-idx3-ubyte"},
          {&files.train_labels, "train-labels-idx1-ubyte"},
          {&files.test_images, "t10k-images-idx3-ubyte"},
          {&files.test_labels, "t10k-labels-idx1-ubyte"}};
      for (const auto& [path, name] : parts) {
        if (path->empty()) missing += std::string(missing.empty() ? "" : ", ") + name + "[.gz]";
      }
      throw DataError("incomplete IDX data set in " + candidate.string() + ": missing " + missing);
    }
  }
  throw DataError("no IDX data set in " + dir +
                  ": expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                  "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]");
}

int64_t ImageSet::num_classes() const {
  return labels.numel() == 0 ? 0 : labels.max().item<int64_t>() + 1;
}

ImageSet load_images(const std::string& images_path, const std::string& labels_path) {
  const at::Tensor images = read_idx_file(images_path);
  const at::Tensor labels = read_idx_file(labels_path);
  if (images.dim() != 3) {
    throw DataError(images_path +
                    ": expected images of shape [N, H, W] (IDX magic 2051), got rank " +
                    std::to_string(images.dim()));
  }
  if (labels.dim() != 1) {
    throw DataError(labels_path + ": expected labels of shape [N] (IDX magic 2049), got rank " +
                    std::to_string(labels.dim()));
  }
  if (labels.size(0) != images.size(0)) {
    throw DataError(labels_path + ": " + std::to_string(labels.size(0)) + " labels for " +
                    std::to_string(images.size(0)) + " images in " + images_path);
  }
  if (images.size(0) == 0) throw DataError(images_path + ": the file holds no images");
  return {images.unsqueeze(1).to(at::kFloat).div_(255.0f), labels.to(at::kLong), {}};
}

Normalization measure_normalization(const at::Tensor& images) {
  // Double sums over blocks of images: a double copy of a whole set would need twice its
  // memory again (1 GB at 224x224). The float32 results equal those of one double pass.
  constexpr int64_t kBlock = 4096;
  const auto blocks = images.split(kBlock);
  const auto n = static_cast<double>(images.numel());
  double sum = 0.0;
  for (const at::Tensor& block : blocks) sum += block.to(at::kDouble).sum().item<double>();
  const double mean = sum / n;
  double squares = 0.0;
  for (const at::Tensor& block : blocks) {
    squares += (block.to(at::kDouble) - mean).pow(2).sum().item<double>();
  }
  const double std = n > 1 ? std::sqrt(squares / (n - 1)) : 0.0;
  return {static_cast<float>(mean), static_cast<float>(std > 1e-6 ? std : 1.0)};
}

void normalize_in_place(ImageSet& set, const Normalization& normalization) {
  set.images.sub_(normalization.mean).div_(normalization.std);
}

void adapt_images(ImageSet& set, int64_t channels, int64_t height, int64_t width) {
  const int64_t own = set.images.size(1);
  if (own != channels && own != 1) {
    throw DataError("cannot turn " + std::to_string(own) + "-channel images into " +
                    std::to_string(channels) + "-channel model inputs");
  }
  set.input_shape = {channels, height, width};
}

at::Tensor ImageSet::batch(const at::Tensor& index) const {
  return as_model_inputs(images.index_select(0, index), input_shape);
}

at::Tensor ImageSet::range(int64_t begin, int64_t end) const {
  return as_model_inputs(images.slice(0, begin, end), input_shape);
}

ImageSet take(const ImageSet& set, int64_t count) {
  if (count <= 0 || count >= set.size()) return set;
  return {set.images.slice(0, 0, count), set.labels.slice(0, 0, count), set.input_shape};
}

at::Tensor epoch_order(int64_t size, uint64_t seed, int64_t epoch) {
  // One generator per epoch, seeded from both, so epochs never share an order.
  at::Generator generator =
      at::detail::createCPUGenerator(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  return at::randperm(size, generator, at::kLong);
}

int64_t num_batches(int64_t size, int64_t batch_size) {
  return (size + batch_size - 1) / batch_size;
}

}  // namespace linquant::apps
