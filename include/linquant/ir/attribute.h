// Typed node attributes: integers, floats, booleans, strings, integer lists, and the values of
// constant nodes (any TorchScript value: tensors, lists, None, devices, ...).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace c10 {
struct IValue;
}  // namespace c10

namespace linquant::ir {

// The value of a `constant` node. Held by pointer so that this header stays free of LibTorch's
// IValue header; include <ATen/core/ivalue.h> to read it.
struct Constant {
  std::shared_ptr<const c10::IValue> value;
  bool operator==(const Constant& other) const;
};
Constant make_constant(const c10::IValue& value);

using AttributeValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, Constant>;

// A sorted map so that printing and comparison are deterministic.
class Attributes {
 public:
  void set(const std::string& key, AttributeValue value) { values_[key] = std::move(value); }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  void erase(const std::string& key) { values_.erase(key); }

  // Typed getters throw linquant::Error naming the key when it is missing or of another type.
  int64_t i(const std::string& key) const;
  double f(const std::string& key) const;
  bool b(const std::string& key) const;
  const std::string& s(const std::string& key) const;
  const std::vector<int64_t>& ints(const std::string& key) const;
  const c10::IValue& constant(const std::string& key) const;

  // With a default for absent keys.
  int64_t i(const std::string& key, int64_t fallback) const;
  double f(const std::string& key, double fallback) const;
  bool b(const std::string& key, bool fallback) const;
  std::string s(const std::string& key, const std::string& fallback) const;

  const std::map<std::string, AttributeValue>& all() const { return values_; }
  bool operator==(const Attributes& other) const { return values_ == other.values_; }

 private:
  template <typename T>
  const T& get(const std::string& key, const char* type_name) const;
  std::map<std::string, AttributeValue> values_;
};

std::string to_string(const AttributeValue& value);

}  // namespace linquant::ir
