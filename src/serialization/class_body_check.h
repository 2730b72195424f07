// A check of the TorchScript source in model archives (code/*.py) before LibTorch compiles it:
// the statements of a class body outside its methods. LibTorch 1.13's importer takes an
// assignment there without a type annotation (`name = value`) as a class constant and reads
// its missing annotation anyway, which is undefined behaviour (a segfault under the fuzzer).
// TorchScript's own printer writes only `name : Type`, `name : Final[Type] = value`, the
// module lists `__parameters__ = [...]` / `__buffers__ = [...]`, `__annotations__` entries,
// and `NAME = value` members of enums; anything else is refused before it reaches LibTorch.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace linquant::serialization {

// "line N: ..." for the first class-body statement of `source` that is not one of the forms
// above; nothing when every one is.
std::optional<std::string> class_body_problem(std::string_view source);

}  // namespace linquant::serialization
