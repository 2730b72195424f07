// Capture error messages name the op or module, its place in the model and the fix, because
// the user meets them before any graph exists to inspect.
#include "capture_error.h"

#include "linquant/common/error.h"

namespace linquant::frontend {

std::string describe_location(const ir::Scope& where) {
  std::string text = where.module_name.empty()
                         ? "in the root module (" + where.module_type + ")"
                         : "in module '" + where.module_name + "' (" + where.module_type + ")";
  if (!where.source.empty()) text += " at " + where.source;
  return text;
}

std::string float_call_advice(const std::string& module_name) {
  if (module_name.empty()) {
    return "The root module cannot be kept as a float call: move this code into a submodule "
           "and list that submodule in non_traceable_module_names to keep it as an unquantized "
           "float call";
  }
  return "List '" + module_name +
         "' in non_traceable_module_names to keep it as an unquantized float call";
}

void throw_capture_error(const std::string& problem, const ir::Scope& where) {
  throw Error("cannot capture " + problem + ", " + describe_location(where) + ". " +
              float_call_advice(where.module_name) + ".");
}

}  // namespace linquant::frontend
