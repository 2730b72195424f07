// Attribute access with errors that name the missing or mistyped key.
#include "linquant/ir/attribute.h"

#include <sstream>

#include "linquant/common/error.h"

namespace linquant::ir {

template <typename T>
const T& Attributes::get(const std::string& key, const char* type_name) const {
  const auto it = values_.find(key);
  if (it == values_.end()) throw Error("node attribute '" + key + "' is missing");
  const T* value = std::get_if<T>(&it->second);
  if (!value) {
    throw Error("node attribute '" + key + "' is " + to_string(it->second) + ", not " +
                type_name);
  }
  return *value;
}

int64_t Attributes::i(const std::string& key) const { return get<int64_t>(key, "an integer"); }
double Attributes::f(const std::string& key) const { return get<double>(key, "a float"); }
bool Attributes::b(const std::string& key) const { return get<bool>(key, "a boolean"); }
const std::string& Attributes::s(const std::string& key) const {
  return get<std::string>(key, "a string");
}
const std::vector<int64_t>& Attributes::ints(const std::string& key) const {
  return get<std::vector<int64_t>>(key, "an integer list");
}

int64_t Attributes::i(const std::string& key, int64_t fallback) const {
  return has(key) ? i(key) : fallback;
}
double Attributes::f(const std::string& key, double fallback) const {
  return has(key) ? f(key) : fallback;
}
bool Attributes::b(const std::string& key, bool fallback) const {
  return has(key) ? b(key) : fallback;
}
std::string Attributes::s(const std::string& key, const std::string& fallback) const {
  return has(key) ? s(key) : fallback;
}

std::string to_string(const AttributeValue& value) {
  std::ostringstream text;
  if (const auto* v = std::get_if<int64_t>(&value)) {
    text << *v;
  } else if (const auto* d = std::get_if<double>(&value)) {
    text << *d;
  } else if (const auto* b = std::get_if<bool>(&value)) {
    text << (*b ? "true" : "false");
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    text << '"' << *s << '"';
  } else {
    const auto& list = std::get<std::vector<int64_t>>(value);
    text << '[';
    for (size_t k = 0; k < list.size(); ++k) text << (k ? ", " : "") << list[k];
    text << ']';
  }
  return text.str();
}

}  // namespace linquant::ir
