// Atomic package writing: layout, overwrite rules, and nothing left behind on failure.
#include "linquant/export/coreml/package_writer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>

#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/manifest.h"

namespace linquant::coreml {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

ProgramBuilder small_program(std::size_t weight_count = 16) {
  ProgramBuilder b(Target::iOS17);
  const Var x = b.add_input("x", TensorType{DType::Float32, {1, 4}});
  const std::int64_t out = static_cast<std::int64_t>(weight_count / 4);
  const TensorValue weight =
      TensorValue::float32({out, 4}, std::vector<float>(weight_count, 0.25f));
  const Var y = b.add_op("linear", "y", {{"x", x}, {"weight", weight}},
                         TensorType{DType::Float32, {1, out}});
  b.set_outputs({y});
  return b;
}

class PackageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "linquant_pkg_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0755);
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

TEST(PackagePath, AppendsTheSuffixWhenMissing) {
  EXPECT_EQ(package_path("out/model"), fs::path("out/model.mlpackage"));
  EXPECT_EQ(package_path("out/model.mlpackage"), fs::path("out/model.mlpackage"));
  EXPECT_EQ(package_path("out/model.mlpackage/"), fs::path("out/model.mlpackage"));
  EXPECT_EQ(package_path("model.mlmodel"), fs::path("model.mlmodel.mlpackage"));
  EXPECT_THROW(package_path(""), ExportError);
  EXPECT_THROW(package_path("/"), ExportError);
}

TEST_F(PackageWriterTest, WritesTheThreeFiles) {
  const ProgramBuilder b = small_program();
  const PackageContents contents = build_package_contents(b);
  const fs::path written = write_package(dir_ / "m", contents);
  EXPECT_EQ(written, dir_ / "m.mlpackage");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"m.mlpackage"}));
  EXPECT_EQ(entries(written), (std::set<std::string>{"Data", "Manifest.json"}));
  const fs::path coreml = written / "Data" / "com.apple.CoreML";
  EXPECT_EQ(entries(coreml), (std::set<std::string>{"model.mlmodel", "weights"}));
  EXPECT_EQ(read_file(coreml / "model.mlmodel"), contents.model);
  const std::string weights = read_file(coreml / "weights" / "weight.bin");
  EXPECT_EQ(std::vector<std::uint8_t>(weights.begin(), weights.end()), contents.weights);
  EXPECT_EQ(weights.size(), 128u + 64u);
  const Manifest manifest = Manifest::from_json(read_file(written / "Manifest.json"));
  EXPECT_EQ(manifest.items.size(), 2u);
}

TEST_F(PackageWriterTest, ExistingPackageNeedsOverwrite) {
  const fs::path path = save_package(dir_ / "m.mlpackage", small_program(16));
  const std::string before = read_file(path / "Data/com.apple.CoreML/model.mlmodel");
  const std::string manifest_before = read_file(path / "Manifest.json");
  try {
    save_package(dir_ / "m.mlpackage", small_program(32));
    FAIL() << "expected an error";
  } catch (const ExportError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("overwrite"), std::string::npos) << message;
  }
  EXPECT_EQ(read_file(path / "Data/com.apple.CoreML/model.mlmodel"), before);
  EXPECT_EQ(read_file(path / "Manifest.json"), manifest_before);
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"m.mlpackage"}));

  PackageWriteOptions options;
  options.overwrite = true;
  save_package(dir_ / "m.mlpackage", small_program(32), {}, options);
  EXPECT_NE(read_file(path / "Data/com.apple.CoreML/model.mlmodel"), before);
  EXPECT_EQ(read_file(path / "Data/com.apple.CoreML/weights/weight.bin").size(), 128u + 128u);
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"m.mlpackage"}));  // old one removed
}

TEST_F(PackageWriterTest, OverwriteReplacesOnlyAPackage) {
  PackageWriteOptions options;
  options.overwrite = true;
  std::ofstream(dir_ / "m.mlpackage") << "not a package";
  fs::create_directory(dir_ / "d.mlpackage");
  std::ofstream(dir_ / "d.mlpackage" / "notes.txt") << "someone's folder";
  for (const char* name : {"m", "d"}) {
    try {
      save_package(dir_ / name, small_program(), {}, options);
      FAIL() << "expected an error for " << name;
    } catch (const ExportError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("not a Core ML package"), std::string::npos) << message;
    }
  }
  EXPECT_EQ(read_file(dir_ / "m.mlpackage"), "not a package");
  EXPECT_EQ(read_file(dir_ / "d.mlpackage" / "notes.txt"), "someone's folder");
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"d.mlpackage", "m.mlpackage"}));
}

TEST_F(PackageWriterTest, MissingParentFailsAndLeavesNothing) {
  try {
    save_package(dir_ / "missing" / "m", small_program());
    FAIL() << "expected an error";
  } catch (const ExportError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find((dir_ / "missing").string()), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(PackageWriterTest, ParentThatIsAFileFails) {
  std::ofstream(dir_ / "file") << "x";
  EXPECT_THROW(save_package(dir_ / "file" / "m", small_program()), ExportError);
  EXPECT_EQ(entries(dir_), (std::set<std::string>{"file"}));
}

// Runs in a child process; as root it first drops to an unprivileged user, since root ignores
// directory permissions.
TEST_F(PackageWriterTest, ReadOnlyParentFailsAndLeavesNothing) {
  const fs::path parent = dir_ / "ro";
  fs::create_directory(parent);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(parent.c_str(), 0555), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::_Exit(4);
    if (::access(parent.c_str(), W_OK) == 0) std::_Exit(5);
    int code = 3;
    try {
      save_package(parent / "m", small_program());
      code = 1;
    } catch (const ExportError& e) {
      const std::string message = e.what();
      code = message.find("Permission denied") != std::string::npos &&
                     message.find(parent.string()) != std::string::npos
                 ? 0
                 : 2;
    }
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: no error, 2: message lacks reason or path, 4: cannot drop root, 5: still writable";
  ::chmod(parent.c_str(), 0755);
  EXPECT_TRUE(entries(parent).empty());
}

TEST_F(PackageWriterTest, SerializationErrorWritesNothing) {
  ProgramBuilder unfinished(Target::iOS17);
  unfinished.add_input("x", TensorType{DType::Float32, {1}});
  EXPECT_THROW(save_package(dir_ / "m", unfinished), ExportError);
  EXPECT_TRUE(entries(dir_).empty());
}

// A write that fails half way (the weight file exceeds RLIMIT_FSIZE) must remove the
// temporary directory. Run in a child process so the limit does not touch the test runner.
TEST_F(PackageWriterTest, FailureDuringWriteLeavesNothing) {
  const PackageContents contents = build_package_contents(small_program(4096));
  ASSERT_GT(contents.weights.size(), 16384u);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG from write() instead of a signal
    rlimit limit{8192, 8192};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 3;
    try {
      write_package(dir_ / "m", contents);
      code = 1;
    } catch (const ExportError& e) {
      code = std::string(e.what()).find("weight.bin") != std::string::npos ? 0 : 2;
    }
    std::_Exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: error without the file name";
  EXPECT_TRUE(entries(dir_).empty());
}

}  // namespace
}  // namespace linquant::coreml
