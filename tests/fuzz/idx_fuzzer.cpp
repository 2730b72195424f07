// libFuzzer harness: the IDX reader on arbitrary bytes, plain and gzipped files alike (the
// input is written to a temporary file, as read_idx_file takes a path). Every input must be
// read or rejected with linquant::DataError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz_scratch.h"
#include "linquant/common/error.h"
#include "linquant/data/idx_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = linquant::fuzz::scratch_file("idx");
  if (!linquant::fuzz::write_scratch(path, data, size)) std::abort();
  try {
    linquant::read_idx_file(path);
  } catch (const linquant::DataError&) {
  }
  return 0;
}
