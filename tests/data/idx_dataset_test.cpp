// IDX reading: hand-made files (plain and gzipped) and every malformed case, plus the
// Fashion-MNIST files from Debian checked against values read with Python's gzip module.
#include "linquant/data/idx_dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "linquant/common/error.h"

namespace linquant {
namespace {

namespace fs = std::filesystem;

class IdxDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("linquant_idx_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<unsigned char> header(unsigned char rank, std::vector<uint32_t> sizes) {
    std::vector<unsigned char> bytes = {0, 0, 0x08, rank};
    for (uint32_t s : sizes) {
      for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((s >> shift) & 0xff);
    }
    return bytes;
  }
  std::string write_plain(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string write_gz(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
  }
  fs::path dir_;
};

TEST_F(IdxDatasetTest, ReadsPlainAndGzippedFiles) {
  std::vector<unsigned char> bytes = header(3, {2, 2, 3});
  for (int i = 0; i < 12; ++i) bytes.push_back(static_cast<unsigned char>(i * 20));
  for (const std::string& path : {write_plain("a-idx3", bytes), write_gz("b-idx3.gz", bytes)}) {
    const at::Tensor t = read_idx_file(path);
    EXPECT_EQ(t.sizes(), (at::IntArrayRef{2, 2, 3}));
    EXPECT_EQ(t.scalar_type(), at::kByte);
    EXPECT_EQ(t[1][1][2].item<uint8_t>(), 220);
  }
}

TEST_F(IdxDatasetTest, LoadsASplitScaledToUnitRange) {
  std::vector<unsigned char> images = header(3, {2, 1, 2});
  for (unsigned char v : {0, 255, 51, 102}) images.push_back(v);
  std::vector<unsigned char> labels = header(1, {2});
  labels.push_back(7);
  labels.push_back(3);
  write_gz("train-images-idx3-ubyte.gz", images);
  write_plain("train-labels-idx1-ubyte", labels);
  const ImageSplit split = load_idx_split(dir_.string(), "train");
  EXPECT_EQ(split.images.sizes(), (at::IntArrayRef{2, 1, 1, 2}));
  EXPECT_EQ(split.images[0][0][0][1].item<float>(), 1.0f);
  EXPECT_EQ(split.images[1][0][0][0].item<float>(), 51.0f / 255.0f);
  EXPECT_TRUE(split.labels.equal(at::tensor({7, 3}, at::kLong)));
}

void expect_data_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected a DataError containing: " << fragment;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST_F(IdxDatasetTest, MalformedFilesNameTheProblem) {
  const std::string wrong_magic = write_plain("bad", {0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 0});
  expect_data_error([&] { read_idx_file(wrong_magic); }, "not an unsigned-byte IDX file");
  std::vector<unsigned char> short_data = header(1, {10});
  short_data.push_back(1);
  const std::string truncated = write_gz("short.gz", short_data);
  expect_data_error([&] { read_idx_file(truncated); }, "file is truncated: the IDX data needs 10 bytes, found 1");
  // Found by scripts/fuzz.sh: a zero next to huge dimensions overflowed ATen's strides.
  const std::string zero_dim =
      write_plain("zero", {0, 0, 8, 3, 0xff, 0, 3, 0, 1, 2, 3, 4, 0, 0, 0, 0});
  expect_data_error([&] { read_idx_file(zero_dim); }, "dimension of 0");
  const std::string short_header = write_plain("hdr", {0, 0, 8});
  expect_data_error([&] { read_idx_file(short_header); }, "truncated: the IDX header");
  expect_data_error([&] { read_idx_file((dir_ / "nope").string()); }, "cannot open");
  expect_data_error([&] { load_idx_split(dir_.string(), "t10k"); },
                    "data set file not found");
}

TEST_F(IdxDatasetTest, LabelCountMustMatchImages) {
  std::vector<unsigned char> images = header(3, {2, 1, 1});
  images.push_back(0);
  images.push_back(0);
  std::vector<unsigned char> labels = header(1, {1});
  labels.push_back(0);
  write_plain("train-images-idx3-ubyte", images);
  write_plain("train-labels-idx1-ubyte", labels);
  expect_data_error([&] { load_idx_split(dir_.string(), "train"); }, "1 labels for 2 images");
}

// Reference values read from the same files with Python's gzip module.
TEST(FashionMnist, DebianFilesReadCompletely) {
  const ImageSplit test = load_idx_split(kDefaultFashionMnistDir, "t10k");
  EXPECT_EQ(test.images.sizes(), (at::IntArrayRef{10000, 1, 28, 28}));
  EXPECT_TRUE(test.labels.slice(0, 0, 10).equal(
      at::tensor({9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, at::kLong)));
  EXPECT_EQ(test.labels.sum().item<int64_t>(), 45000);
  EXPECT_EQ((test.images[0] * 255.0f).round().sum().item<float>(), 33456.0f);
  const ImageSplit train = load_idx_split(kDefaultFashionMnistDir, "train");
  EXPECT_EQ(train.images.size(0), 60000);
  EXPECT_EQ(train.labels.sum().item<int64_t>(), 270000);
}

}  // namespace
}  // namespace linquant
