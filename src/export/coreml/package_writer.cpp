// Atomic .mlpackage writing: build the whole directory under a hidden temporary sibling name,
// fsync it, then rename it into place (renameat2 NOREPLACE / EXCHANGE where available so an
// existing package is never clobbered by accident, and replaced in one step when asked to).
#include "linquant/export/coreml/package_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <system_error>

#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/manifest.h"

namespace linquant::coreml {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".mlpackage";

std::string os_reason(int error) { return std::strerror(error); }

// Messages here name the file concerned; write_package prefixes the package path.
[[noreturn]] void fail(const std::string& what, const fs::path& path, int error) {
  throw ExportError(what + " \"" + path.string() + "\": " + os_reason(error));
}

ExportError already_exists() {
  return ExportError("it already exists; set PackageWriteOptions::overwrite = true to replace it");
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string random_tag() {
  std::random_device device;
  char text[17];
  std::snprintf(text, sizeof text, "%08x%08x", device(), device());
  return text;
}

void make_directory(const fs::path& path) {
  if (::mkdir(path.c_str(), 0755) != 0) fail("cannot create directory", path, errno);
}

void sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail("cannot open for syncing", path, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) fail("cannot sync", path, error);
}

void write_file(const fs::path& path, const void* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create file", path, errno);
  const char* p = static_cast<const char*>(data);
  std::size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      fail("cannot write file", path, error);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail("cannot sync file", path, error);
  }
  if (::close(fd) != 0) fail("cannot close file", path, errno);
}

bool path_exists(const fs::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Moves the finished temporary package to `dest`. Returns the path of what must be deleted
// afterwards (the replaced package), or an empty path.
fs::path install(const fs::path& temp, const fs::path& dest, bool overwrite) {
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) == 0) return {};
  const int error = errno;
  const bool flags_unsupported = error == EINVAL || error == ENOSYS;
  if (error == EEXIST && !overwrite) {
    throw already_exists();
  }
  if (!flags_unsupported && error != EEXIST) fail("cannot rename into place", dest, error);

  if (!overwrite) {
    // The file system cannot refuse to replace: check first (a small race remains).
    if (path_exists(dest)) {
      throw already_exists();
    }
    if (::rename(temp.c_str(), dest.c_str()) != 0) fail("cannot rename into place", dest, errno);
    return {};
  }

  // Replace: swap in one step, leaving the old package under the temporary name.
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) {
    return temp;
  }
  const int exchange_error = errno;
  if (exchange_error == ENOENT && !path_exists(dest)) {
    if (::rename(temp.c_str(), dest.c_str()) != 0) fail("cannot rename into place", dest, errno);
    return {};
  }
  if (exchange_error != EINVAL && exchange_error != ENOSYS) {
    fail("cannot replace", dest, exchange_error);
  }
  // No atomic exchange on this file system: move the old package aside, then put the new one
  // in place, restoring the old one if that fails.
  const fs::path aside =
      dest.parent_path() / ("." + dest.filename().string() + ".old-" + random_tag());
  if (::rename(dest.c_str(), aside.c_str()) != 0) fail("cannot move aside", dest, errno);
  if (::rename(temp.c_str(), dest.c_str()) != 0) {
    const int rename_error = errno;
    ::rename(aside.c_str(), dest.c_str());
    fail("cannot rename into place", dest, rename_error);
  }
  return aside;
}

}  // namespace

fs::path package_path(const fs::path& path) {
  std::string text = path.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  if (text.empty() || text == "/" || text == "." || text == "..") {
    throw ExportError("Core ML package path \"" + path.string() +
                      "\" does not name a package (give a file name such as model.mlpackage)");
  }
  if (!ends_with(text, kSuffix)) text += kSuffix;
  return fs::path(text);
}

fs::path write_package(const fs::path& path, const PackageContents& contents,
                       const PackageWriteOptions& options) {
  const fs::path dest = package_path(path);
  const fs::path parent = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  try {
    struct stat st;
    if (::stat(parent.c_str(), &st) != 0) fail("parent directory", parent, errno);
    if (!S_ISDIR(st.st_mode)) fail("parent", parent, ENOTDIR);
    if (path_exists(dest)) {
      if (!options.overwrite) throw already_exists();
      // Overwriting replaces a package, never a file or folder that only has its name.
      struct stat manifest;
      if (::stat((dest / "Manifest.json").c_str(), &manifest) != 0 || !S_ISREG(manifest.st_mode)) {
        throw ExportError(
            "it exists and is not a Core ML package (no Manifest.json); "
            "overwrite replaces only a package");
      }
    }

    const fs::path temp = parent / ("." + dest.filename().string() + ".tmp-" + random_tag());
    make_directory(temp);
    fs::path leftover;
    try {
      const fs::path data = temp / "Data";
      const fs::path coreml = data / "com.apple.CoreML";
      const fs::path weights = coreml / "weights";
      make_directory(data);
      make_directory(coreml);
      make_directory(weights);
      write_file(coreml / "model.mlmodel", contents.model.data(), contents.model.size());
      write_file(weights / "weight.bin", contents.weights.data(), contents.weights.size());
      const std::string manifest = Manifest::for_ml_program().to_json();
      write_file(temp / "Manifest.json", manifest.data(), manifest.size());
      for (const fs::path& dir : {weights, coreml, data, temp}) sync_path(dir, true);
      leftover = install(temp, dest, options.overwrite);
    } catch (...) {
      std::error_code ignored;
      fs::remove_all(temp, ignored);
      throw;
    }
    if (!leftover.empty()) {
      std::error_code ignored;
      fs::remove_all(leftover, ignored);
    }
  } catch (const ExportError& e) {
    throw ExportError("cannot write Core ML package \"" + dest.string() + "\": " + e.what());
  } catch (const std::exception& e) {
    throw ExportError("cannot write Core ML package \"" + dest.string() + "\": " + e.what());
  }
  // Make the rename itself durable; the package is complete either way.
  try {
    sync_path(parent, true);
  } catch (const ExportError&) {
  }
  return dest;
}

fs::path save_package(const fs::path& path, const ProgramBuilder& program, const ModelInfo& info,
                      const PackageWriteOptions& options) {
  const PackageContents contents = build_package_contents(program, info);
  return write_package(path, contents, options);
}

}  // namespace linquant::coreml
