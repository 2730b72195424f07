// Deployment target tables (coremltools' AvailableTarget values and opset names).
#include "linquant/export/coreml/target.h"

#include <cctype>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {

int specification_version(Target target) {
  switch (target) {
    case Target::iOS15: return 6;
    case Target::iOS16: return 7;
    case Target::iOS17: return 8;
    case Target::iOS18: return 9;
  }
  throw ExportError("specification_version: unknown Core ML target");
}

std::string opset_name(Target target) {
  switch (target) {
    case Target::iOS15: return "CoreML5";
    case Target::iOS16: return "CoreML6";
    case Target::iOS17: return "CoreML7";
    case Target::iOS18: return "CoreML8";
  }
  throw ExportError("opset_name: unknown Core ML target");
}

std::string to_string(Target target) {
  switch (target) {
    case Target::iOS15: return "iOS15";
    case Target::iOS16: return "iOS16";
    case Target::iOS17: return "iOS17";
    case Target::iOS18: return "iOS18";
  }
  throw ExportError("to_string: unknown Core ML target");
}

std::string to_string(ComputePrecision precision) {
  return precision == ComputePrecision::Float16 ? "fp16" : "fp32";
}

Target parse_target(std::string_view text) {
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const struct {
    const char* ios;
    const char* macos;
    Target target;
  } kTable[] = {{"ios15", "macos12", Target::iOS15},
                {"ios16", "macos13", Target::iOS16},
                {"ios17", "macos14", Target::iOS17},
                {"ios18", "macos15", Target::iOS18}};
  for (const auto& row : kTable) {
    if (lower == row.ios || lower == row.macos) return row.target;
  }
  throw ExportError("Core ML target \"" + std::string(text) +
                    "\" is not one of iOS15, iOS16, iOS17, iOS18 (or macOS12..macOS15)");
}

}  // namespace linquant::coreml
