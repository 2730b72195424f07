// Whole-file reads and writes with POSIX calls: every failure keeps its errno.
#include "linquant/common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "linquant/common/error.h"

namespace linquant {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  // close() can report a write error (e.g. on NFS); returns its errno or 0.
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int error) {
  throw Error("cannot " + what + " " + path.string() + ": " + std::strerror(error));
}

void write_all(FileDescriptor& file, const std::filesystem::path& path, const std::string& bytes,
               bool sync) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(file.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", path, errno);
    done += static_cast<size_t>(n);
  }
  if (sync && ::fsync(file.get()) != 0) fail("write", path, errno);
  if (const int error = file.close()) fail("write", path, error);
}

}  // namespace

std::string read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes) {
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) fail("read", path, errno);
  struct stat info{};
  if (::fstat(file.get(), &info) != 0) fail("read", path, errno);
  if (S_ISDIR(info.st_mode)) fail("read", path, EISDIR);
  if (!S_ISREG(info.st_mode)) throw Error("cannot read " + path.string() + ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  if (size > max_bytes) {
    throw Error("cannot read " + path.string() + ": " + format_bytes(size) + " is more than the " +
                format_bytes(max_bytes) + " linquant reads");
  }
  std::string bytes(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(file.get(), bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read", path, errno);
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

void write_file_bytes(const std::filesystem::path& path, const std::string& bytes) {
  FileDescriptor file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (file.get() < 0) fail("write", path, errno);
  write_all(file, path, bytes, /*sync=*/false);
}

void replace_file_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) fail("write", path, EISDIR);
  std::random_device random;
  const std::filesystem::path temp =
      path.parent_path() / ("." + path.filename().string() + ".tmp-" + std::to_string(random()));
  FileDescriptor file(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (file.get() < 0) fail("write", path, errno);
  try {
    write_all(file, temp, bytes, /*sync=*/true);
    if (::rename(temp.c_str(), path.c_str()) != 0) fail("write", path, errno);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
}

std::string format_bytes(uint64_t bytes) {
  char buffer[32];
  if (bytes < 1000) {
    std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(buffer, sizeof buffer, "%.1f kB", bytes / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2f MB", bytes / 1e6);
  }
  return buffer;
}

}  // namespace linquant
