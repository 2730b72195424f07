// Module type name normalization (see module_type_name.h). Only the namespace of torch.nn
// is dropped: other qualified names ("torch.add", "operator.add") are distinct types.
#include "module_type_name.h"

namespace linquant::config_detail {
namespace {

bool strip_prefix(std::string& text, const std::string& prefix) {
  if (text.size() <= prefix.size() || text.compare(0, prefix.size(), prefix) != 0) return false;
  text.erase(0, prefix.size());
  return true;
}

}  // namespace

std::string normalize_module_type(const std::string& type) {
  std::string name = type;
  if (strip_prefix(name, "torch.nn.") || strip_prefix(name, "nn.")) {
    // Python prints classes by their defining module: torch.nn.modules.conv.Conv2d.
    if (strip_prefix(name, "modules.")) name.erase(0, name.rfind('.') + 1);
    return name;
  }
  // LibTorch's Module::name() spells the C++ class: torch::nn::Conv2dImpl.
  if (strip_prefix(name, "torch::nn::") || strip_prefix(name, "nn::")) {
    const std::string suffix = "Impl";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      name.erase(name.size() - suffix.size());
    }
  }
  return name;
}

}  // namespace linquant::config_detail
