// Class-body statements of serialized TorchScript source (see class_body_check.h).
#include "class_body_check.h"

#include <cctype>
#include <string>

namespace linquant::serialization {
namespace {

size_t indentation(std::string_view line) {
  size_t spaces = 0;
  while (spaces < line.size() && line[spaces] == ' ') ++spaces;
  return spaces;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The superclass named in `class Name(Super):`, empty without one.
std::string superclass_of(std::string_view line) {
  const size_t open = line.find('(');
  const size_t close = line.find(')', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos) return {};
  return std::string(line.substr(open + 1, close - open - 1));
}

// The length of the identifier at the start of `text`.
size_t identifier_length(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && (std::isalnum(static_cast<unsigned char>(text[n])) || text[n] == '_'))
    ++n;
  return n;
}

// What is wrong with one class-body statement, if anything.
std::optional<std::string> statement_problem(std::string_view statement,
                                             const std::string& superclass) {
  if (starts_with(statement, "def ") || starts_with(statement, "@")) return std::nullopt;
  size_t target = identifier_length(statement);
  const std::string_view name = statement.substr(0, target);
  if (name.empty()) return "a class-body statement that is not an assignment";
  if (name == "__annotations__" && target < statement.size() && statement[target] == '[') {
    const size_t close = statement.find(']', target);
    if (close == std::string_view::npos) return "an unclosed __annotations__[...]";
    target = close + 1;
  }
  std::string_view rest = statement.substr(target);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (starts_with(rest, ":")) {  // an attribute, or with a value a constant (Final[...] only)
    std::string_view annotation = rest.substr(1);
    while (!annotation.empty() && annotation.front() == ' ') annotation.remove_prefix(1);
    if (rest.find(" = ") != std::string_view::npos && !starts_with(annotation, "Final[")) {
      return "class constant \"" + std::string(name) + "\" without a Final[...] annotation";
    }
    return std::nullopt;
  }
  if (!starts_with(rest, "=")) return "a class-body statement that is not an assignment";
  const bool module_list =
      name == "__parameters__" || name == "__buffers__" || name == "__annotations__";
  if (superclass == "Enum" || (module_list && superclass != "NamedTuple")) return std::nullopt;
  return "class attribute \"" + std::string(name) + "\" assigned without a type annotation";
}

}  // namespace

std::optional<std::string> class_body_problem(std::string_view source) {
  std::optional<std::string> superclass;  // set inside a top-level class
  size_t line_number = 0;
  while (!source.empty()) {
    const size_t end = source.find('\n');
    std::string_view line = source.substr(0, end);
    source.remove_prefix(end == std::string_view::npos ? source.size() : end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t indent = indentation(line);
    if (indent == line.size() || line[indent] == '#') continue;  // blank or comment
    if (indent == 0) {
      superclass.reset();
      if (starts_with(line, "class ")) superclass = superclass_of(line);
      continue;
    }
    if (!superclass || indent != 2) continue;  // method bodies and continuation lines
    if (auto problem = statement_problem(line.substr(indent), *superclass)) {
      return "line " + std::to_string(line_number) + ": " + *problem;
    }
  }
  return std::nullopt;
}

}  // namespace linquant::serialization
