// A per-process scratch path under /tmp for harnesses whose reader takes a file or folder.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace linquant::fuzz {

// A fresh temporary file name (the file exists, empty) the process may reuse on every input.
inline const std::string& scratch_file(const char* tag) {
  static const std::string path = [tag] {
    std::string pattern = std::string("/tmp/linquant_") + tag + "_fuzz_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) std::abort();
    close(fd);
    return pattern;
  }();
  return path;
}

// False when the file cannot be written (the harness decides whether that is fatal).
inline bool write_scratch(const std::string& path, const void* data, size_t size) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return false;
  const bool written = size == 0 || std::fwrite(data, 1, size, file) == size;
  return std::fclose(file) == 0 && written;
}

}  // namespace linquant::fuzz
