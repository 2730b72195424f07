// The input format of the harnesses that read several files at once (a saved model's zip
// records, an .mlpackage's folder): a sequence of
//   [1 byte name length][name][4 bytes little-endian data length][data]
// A length past the end of the input takes what is left. scripts/fuzz.sh turns real files
// into this format for the seed corpus (tests/fuzz/make_bundle.py), so mutations change
// file contents and names rather than break a zip checksum on every try.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace linquant::fuzz {

struct BundleFile {
  std::string name;
  std::string data;
};

inline std::vector<BundleFile> read_bundle(const uint8_t* bytes, size_t size) {
  std::vector<BundleFile> files;
  size_t at = 0;
  auto take = [&](size_t wanted) {
    const size_t n = wanted < size - at ? wanted : size - at;
    std::string part(reinterpret_cast<const char*>(bytes + at), n);
    at += n;
    return part;
  };
  while (at < size) {
    BundleFile file;
    file.name = take(bytes[at++]);
    uint32_t length = 0;
    for (int shift = 0; shift < 32 && at < size; shift += 8)
      length |= uint32_t{bytes[at++]} << shift;
    file.data = take(length);
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace linquant::fuzz
