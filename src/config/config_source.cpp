// Owns the "text or path?" decision of from_json/from_yaml and the reading of config
// files, with the operating system's reason when a file cannot be read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "document.h"
#include "linquant/common/error.h"

namespace linquant::config_detail {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

// A missing file must not be parsed as a document (the user would get a puzzling syntax
// error), and a document must not be reported as a missing file. Documents of interest are
// objects, so they hold '{' or ':' or span lines; a name with a config extension is a path
// even when it holds a ':'.
bool looks_like_path(const std::string& text) {
  if (is_blank(text) || text.find('\n') != std::string::npos) return false;
  if (ends_with(text, ".json") || ends_with(text, ".yaml") || ends_with(text, ".yml")) {
    return true;
  }
  return text.find_first_of("{[:") == std::string::npos;
}

[[noreturn]] void fail_to_read(const std::string& path, int error_number) {
  throw ConfigError("cannot read config file '" + path + "': " + std::strerror(error_number));
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_to_read(path, errno);
  // Directories are refused; pipes and other readable files (e.g. <(...) in a shell) are fine.
  struct stat info {};
  int error_number = 0;
  if (::fstat(fd, &info) != 0) {
    error_number = errno;
  } else if (S_ISDIR(info.st_mode)) {
    error_number = EISDIR;
  }
  if (error_number != 0) {
    ::close(fd);
    fail_to_read(path, error_number);
  }
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error_number = errno;
      ::close(fd);
      fail_to_read(path, error_number);
    }
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {  // also ends reading /dev/zero and the like
      ::close(fd);
      throw ConfigError("config file '" + path + "' is larger than " +
                        std::to_string(kMaxConfigBytes >> 20) +
                        " MiB; a config is a small text file");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

Source load_source(const std::string& text_or_path) {
  // Any existing file wins, whatever its name looks like; text with a newline is never a path.
  const bool single_line = text_or_path.find('\n') == std::string::npos;
  int stat_error = ENOENT;
  if (single_line && !text_or_path.empty()) {
    struct stat info {};
    if (::stat(text_or_path.c_str(), &info) == 0) return {read_file(text_or_path), text_or_path};
    stat_error = errno;
  }
  if (looks_like_path(text_or_path)) fail_to_read(text_or_path, stat_error);
  return {text_or_path, kRootPath};
}

}  // namespace linquant::config_detail
