// The parts of capture error messages: where in the model, and what the user can do.
#pragma once

#include <string>

#include "linquant/ir/graph.h"

namespace linquant::frontend {

// "in module 'encoder.attn' (CumulativeAttention) at model.py:12", or "in the root module
// (Net)" for code in the model's own forward.
std::string describe_location(const ir::Scope& where);

// The fix for code linquant cannot capture: keep the submodule as a float call, or, for the
// root module (which cannot be kept), move the code into a submodule first.
std::string float_call_advice(const std::string& module_name);

// Throws linquant::Error: "<problem>, <location>. <advice>".
[[noreturn]] void throw_capture_error(const std::string& problem, const ir::Scope& where);

}  // namespace linquant::frontend
