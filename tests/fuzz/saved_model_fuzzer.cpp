// libFuzzer harness: the reader of saved quantized models (what `inspect` and `export` load).
// The input is a file bundle (file_bundle.h) of archive records; the harness zips them with
// LibTorch's own writer, so every mutation reaches the reader with valid checksums, and loads
// the result as the CLI does. Every input must load or be rejected with linquant::Error or
// c10::Error (both a one-line error, exit 2, in the CLI); a crash, a sanitizer report, any
// other exception or an allocation past the fuzzer's limit is a finding.
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "file_bundle.h"
#include "fuzz_scratch.h"
#include "linquant/common/error.h"
#include "saved_model.h"

namespace {

// Names the zip writer takes (it throws from the middle of an archive on others, which would
// test the harness, not the reader): a relative path of letters, digits and "._-/" that does
// not end in '/' (the zip format keeps such names for empty folders).
bool usable_record_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/' || name.size() > 200) return false;
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '/')
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string zip;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&zip](const void* bytes, size_t n) {
      zip.append(static_cast<const char*>(bytes), n);
      return n;
    });
    std::set<std::string> written{"version", ".data/version"};  // the writer adds these
    for (const linquant::fuzz::BundleFile& file : linquant::fuzz::read_bundle(data, size)) {
      if (!usable_record_name(file.name) || !written.insert(file.name).second) continue;
      writer.writeRecord(file.name, file.data.data(), file.data.size());
    }
    writer.writeEndOfFile();
  }
  const std::string& path = linquant::fuzz::scratch_file("saved_model");
  if (!linquant::fuzz::write_scratch(path, zip.data(), zip.size())) std::abort();
  try {
    if (linquant::apps::is_saved_model(path)) linquant::apps::load_quantized_model(path);
  } catch (const linquant::Error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
