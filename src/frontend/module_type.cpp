// Normalization of C++ and TorchScript module class names to the short names Python prints
// with type(m).__name__, which configs and scopes use.
#include "module_type.h"

#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

const std::string kTorchScriptPrefix = "__torch__.";

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d" -> "torch.nn.modules.conv.Conv2d":
// TorchScript adds the prefix to every class and mangles names that occur twice.
std::string python_path(const std::string& raw) {
  std::string path = starts_with(raw, kTorchScriptPrefix) ? raw.substr(kTorchScriptPrefix.size())
                                                          : raw;
  std::string result;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!starts_with(part, "___torch_mangle_")) result += (result.empty() ? "" : ".") + part;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return result;
}

}  // namespace

std::string normalize_module_type(const std::string& raw) {
  if (raw.find('.') != std::string::npos) {
    const std::string path = python_path(raw);
    return path.substr(path.rfind('.') + 1);
  }
  // C++ classes: Module::name() spells "torch::nn::Conv2dImpl"; the TORCH_MODULE convention
  // names the implementation class <Type>Impl and the user-facing holder <Type>.
  std::string name = raw;
  const size_t colons = name.rfind("::");
  if (colons != std::string::npos) name = name.substr(colons + 2);
  const std::string impl = "Impl";
  if (name.size() > impl.size() && ends_with(name, impl)) name.erase(name.size() - impl.size());
  return name;
}

bool is_torch_nn_leaf_type(const std::string& raw) {
  const std::string path = python_path(raw);
  if (!starts_with(path, "torch.nn.") && !starts_with(path, "torch.ao.nn.")) return false;
  const std::string type = path.substr(path.rfind('.') + 1);
  return type != "Sequential" && type != "ModuleList" && type != "ModuleDict";
}

}  // namespace linquant::frontend
