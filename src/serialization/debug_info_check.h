// A check of the debug information in model archives (code/*.py.debug_pkl): the table that
// maps each range of the serialized code to the Python source that generated it. LibTorch
// 1.13 reads it lazily, when a source location is asked for, and trusts its string indices
// and offsets: an index past its string table is a null dereference (the saved-model fuzzer
// found one). Each entry is checked against the two layouts LibTorch writes:
//   ("FORMAT_WITH_STRING_TABLE", (strings...), ((offset, ((text indices], file index, line),
//     start, end), debug handle), ...))
//   ((offset, ((text, file or None, line), start, end)[, debug handle]), ...)   (older files)
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace linquant::serialization {

// What is wrong with the unpickled-from `data` debug table, if anything (the pickle must
// have passed the archive's length checks).
std::optional<std::string> debug_info_problem(const char* data, size_t size);

}  // namespace linquant::serialization
