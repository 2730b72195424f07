// How linquant calls the forward of a C++ torch::nn::Module it captures with LibTorch's
// tracer: a function from the example tensors to the output tensors. forward_of() makes one
// from a module whose forward takes tensors and returns a tensor, a tuple of tensors or a
// vector of tensors; for any other signature, write the function yourself.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "linquant/common/error.h"

namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace linquant::frontend {

// Called with the model inputs (the example inputs while tracing); returns what forward
// returns, as a list of tensors. Throw linquant::Error for inputs it cannot take.
using ModuleForward = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

// The tensors in a forward's result: a tensor, or tuples and lists of tensors (flattened in
// order); Error naming `module_type` for anything else.
std::vector<at::Tensor> forward_outputs(const c10::IValue& result, const std::string& module_type);

// `module_type` as the C++ class (torch::nn::Module::name()).
std::string module_type_name(const torch::nn::Module& module);

namespace detail {

template <typename Argument>
inline constexpr bool is_tensor_argument =
    std::is_same_v<std::remove_cv_t<std::remove_reference_t<Argument>>, at::Tensor>;

template <typename Module, typename Call, size_t... Index>
std::vector<at::Tensor> call_with_inputs(Module& module, const Call& call, size_t arity,
                                         const std::vector<at::Tensor>& inputs,
                                         std::index_sequence<Index...>) {
  if (inputs.size() != arity) {
    throw Error("the forward of " + module_type_name(module) + " takes " + std::to_string(arity) +
                " tensors, but " + std::to_string(inputs.size()) + " example inputs were given");
  }
  return forward_outputs(c10::IValue(call(inputs[Index]...)), module_type_name(module));
}

template <typename Module, typename Class, typename Result, typename... Arguments>
ModuleForward bind_forward(const std::shared_ptr<Module>& module,
                           Result (Class::*forward)(Arguments...)) {
  static_assert((is_tensor_argument<Arguments> && ...),
                "linquant: forward_of() needs a forward whose arguments are all tensors; "
                "for other signatures pass a ModuleForward of your own");
  return [module, forward](const std::vector<at::Tensor>& inputs) {
    auto call = [&](auto&&... tensors) { return ((*module).*forward)(tensors...); };
    return call_with_inputs(*module, call, sizeof...(Arguments), inputs,
                            std::index_sequence_for<Arguments...>{});
  };
}

}  // namespace detail

// The forward of `module` as a ModuleForward. Each argument of Module::forward must be a
// tensor (Tensor or const Tensor&), and forward must be neither overloaded nor a template.
template <typename Module>
ModuleForward forward_of(const std::shared_ptr<Module>& module) {
  return detail::bind_forward(module, &Module::forward);
}

}  // namespace linquant::frontend
