// The source-range tables of serialized TorchScript code (see debug_info_check.h).
#include "debug_info_check.h"

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <exception>
#include <vector>

namespace linquant::serialization {
namespace {

constexpr const char* kStringTableTag = "FORMAT_WITH_STRING_TABLE";

bool is_tuple_of(const c10::IValue& value, size_t size) {
  return value.isTuple() && value.toTupleRef().elements().size() == size;
}

// The length of the source text an entry's range indexes, or nothing when the source part
// is malformed. `strings`: the string table (empty for the older layout).
std::optional<int64_t> source_length(const c10::IValue& source,
                                     const std::vector<std::string>& strings, bool with_table) {
  if (!is_tuple_of(source, 3)) return std::nullopt;
  const auto& parts = source.toTupleRef().elements();
  if (!parts[2].isInt()) return std::nullopt;
  if (!with_table) {
    if (!parts[0].isString() || !(parts[1].isString() || parts[1].isNone())) return std::nullopt;
    return static_cast<int64_t>(parts[0].toStringRef().size());
  }
  const auto in_table = [&](const c10::IValue& index) {
    return index.isInt() && index.toInt() >= 0 &&
           static_cast<size_t>(index.toInt()) < strings.size();
  };
  if (!in_table(parts[1]) || !parts[0].isList()) return std::nullopt;
  int64_t length = 0;
  for (const c10::IValue& index : parts[0].toListRef()) {
    if (!in_table(index)) return std::nullopt;
    length += static_cast<int64_t>(strings[index.toInt()].size());
  }
  return length;
}

bool is_entry(const c10::IValue& entry, const std::vector<std::string>& strings, bool with_table) {
  if (!entry.isTuple()) return false;
  const auto& fields = entry.toTupleRef().elements();
  if (fields.size() != 2 && fields.size() != 3) return false;
  if (!fields[0].isInt() || (fields.size() == 3 && !fields[2].isInt())) return false;
  if (!is_tuple_of(fields[1], 3)) return false;
  const auto& range = fields[1].toTupleRef().elements();
  const std::optional<int64_t> length = source_length(range[0], strings, with_table);
  return length && range[1].isInt() && range[2].isInt() && range[1].toInt() >= 0 &&
         range[1].toInt() <= range[2].toInt() && range[2].toInt() <= *length;
}

}  // namespace

std::optional<std::string> debug_info_problem(const char* data, size_t size) {
  c10::IValue table;
  try {
    table = torch::jit::unpickle(data, size);
  } catch (const std::exception&) {
    return "its source ranges cannot be unpickled";
  }
  std::vector<std::string> strings;
  const bool with_table = is_tuple_of(table, 3) && table.toTupleRef().elements()[0].isString() &&
                          table.toTupleRef().elements()[0].toStringRef() == kStringTableTag;
  c10::IValue entries = table;
  if (with_table) {
    const auto& parts = table.toTupleRef().elements();
    if (!parts[1].isTuple()) return "its string table is not a tuple of strings";
    for (const c10::IValue& text : parts[1].toTupleRef().elements()) {
      if (!text.isString()) return "its string table is not a tuple of strings";
      strings.push_back(text.toStringRef());
    }
    entries = parts[2];
  }
  if (!entries.isTuple()) return "its source ranges are not a tuple";
  const auto& list = entries.toTupleRef().elements();
  for (size_t i = 0; i < list.size(); ++i) {
    if (!is_entry(list[i], strings, with_table)) {
      return "source range " + std::to_string(i) + " is malformed or points outside its text";
    }
  }
  return std::nullopt;
}

}  // namespace linquant::serialization
