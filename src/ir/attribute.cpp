// Attribute access with errors that name the missing or mistyped key.
#include "linquant/ir/attribute.h"

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

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

const c10::IValue& Attributes::constant(const std::string& key) const {
  return *get<Constant>(key, "a constant").value;
}

Constant make_constant(const c10::IValue& value) {
  return Constant{std::make_shared<const c10::IValue>(value)};
}

bool Constant::operator==(const Constant& other) const {
  if (!value || !other.value) return value == other.value;
  const c10::IValue& a = *value;
  const c10::IValue& b = *other.value;
  if (a.isTensor() || b.isTensor()) {
    if (!a.isTensor() || !b.isTensor()) return false;
    const at::Tensor& x = a.toTensor();
    const at::Tensor& y = b.toTensor();
    return x.is_same(y) || (x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() &&
                            at::equal(x, y));
  }
  // Lists and tuples holding tensors compare element by element through IValue's own ==.
  try {
    return a == b;
  } catch (const std::exception&) {
    return false;
  }
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
  } else if (const auto* c = std::get_if<Constant>(&value)) {
    if (!c->value) {
      text << "<unset>";
    } else if (c->value->isTensor()) {
      const at::Tensor& t = c->value->toTensor();
      text << "tensor<" << t.scalar_type() << " " << t.sizes() << ">";
    } else {
      text << *c->value;
    }
  } else {
    const auto& list = std::get<std::vector<int64_t>>(value);
    text << '[';
    for (size_t k = 0; k < list.size(); ++k) text << (k ? ", " : "") << list[k];
    text << ']';
  }
  return text.str();
}

}  // namespace linquant::ir
