// libFuzzer harness: LinearQuantizerConfig from JSON or YAML text (the first byte picks the
// reader). Every input must either parse and validate, or throw linquant::Error; anything
// else (a crash, a sanitizer report, another exception, a hang) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "linquant/common/error.h"
#include "linquant/config/linear_quantizer_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // A leading newline: text with a newline is never taken for a file path.
  const std::string text = "\n" + std::string(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const linquant::LinearQuantizerConfig config =
        data[0] % 2 ? linquant::LinearQuantizerConfig::from_json(text)
                    : linquant::LinearQuantizerConfig::from_yaml(text);
    // What parses must write back and read again.
    linquant::LinearQuantizerConfig::from_yaml("\n" + config.to_yaml());
  } catch (const linquant::Error&) {
  }
  return 0;
}
