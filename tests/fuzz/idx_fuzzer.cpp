// libFuzzer harness: the IDX reader on arbitrary bytes, plain and gzipped files alike (the
// input is written to a temporary file, as read_idx_file takes a path). Every input must be
// read or rejected with linquant::DataError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "linquant/common/error.h"
#include "linquant/data/idx_dataset.h"

namespace {

std::string scratch_path() {
  static const std::string path = [] {
    char pattern[] = "/tmp/linquant_idx_fuzz_XXXXXX";
    const int fd = mkstemp(pattern);
    if (fd < 0) std::abort();
    close(fd);
    return std::string(pattern);
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = scratch_path();
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) std::abort();
  std::fwrite(data, 1, size, file);
  std::fclose(file);
  try {
    linquant::read_idx_file(path);
  } catch (const linquant::DataError&) {
  }
  return 0;
}
