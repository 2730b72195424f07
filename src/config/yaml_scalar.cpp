// Typing of plain YAML scalars (see yaml_scalar.h); written by hand rather than with
// std::regex to keep the rules readable next to the schema they implement.
#include "yaml_scalar.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>

namespace linquant::config_detail {
namespace {

bool one_of(const std::string& text, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return text == w; });
}

bool all_digits(const std::string& text, std::size_t from, int base) {
  if (from >= text.size()) return false;
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(from), text.end(), [base](char c) {
    const auto u = static_cast<unsigned char>(c);
    return base == 16 ? std::isxdigit(u) != 0 : (c >= '0' && c < static_cast<char>('0' + base));
  });
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool is_core_float(const std::string& text) {
  std::size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  auto digits = [&]() {
    const std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    return i - start;
  };
  const std::size_t integer_digits = digits();
  std::size_t fraction_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    fraction_digits = digits();
  }
  if (integer_digits == 0 && fraction_digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

// Integers that do not fit int64 are kept as unsigned (like the JSON reader does) or as a
// float, so that range checks later report the number rather than a type mismatch.
Document integer_value(const std::string& text, std::size_t digits_from, int base) {
  const bool negative = text[0] == '-';
  const char* first = text.data() + digits_from;
  const char* last = text.data() + text.size();
  std::uint64_t magnitude = 0;
  if (std::from_chars(first, last, magnitude, base).ec == std::errc()) {
    constexpr auto kMaxSigned = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative) {
      if (magnitude <= kMaxSigned) return static_cast<std::int64_t>(magnitude);
      return magnitude;
    }
    if (magnitude <= kMaxSigned + 1) return static_cast<std::int64_t>(0 - magnitude);
  }
  double value = 0;
  std::from_chars(first, last, value);
  return negative ? -value : value;
}

Document float_value(const std::string& text) {
  const std::size_t from = (text[0] == '-' || text[0] == '+') ? 1 : 0;
  double value = 0;
  std::from_chars(text.data() + from, text.data() + text.size(), value);
  return text[0] == '-' ? -value : value;
}

}  // namespace

bool is_yaml11_boolean(const std::string& text) {
  return one_of(text, {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On",
                       "ON", "off", "Off", "OFF"});
}

Document resolve_plain_scalar(const std::string& text) {
  if (one_of(text, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (one_of(text, {"true", "True", "TRUE"})) return true;
  if (one_of(text, {"false", "False", "FALSE"})) return false;
  const std::size_t sign = (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (all_digits(text, sign, 10)) return integer_value(text, sign, 10);
  if (text.rfind("0o", 0) == 0 && all_digits(text, 2, 8)) return integer_value(text, 2, 8);
  if (text.rfind("0x", 0) == 0 && all_digits(text, 2, 16)) return integer_value(text, 2, 16);
  if (is_core_float(text)) return float_value(text);
  if (one_of(text, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) {
    return std::numeric_limits<double>::infinity();
  }
  if (one_of(text, {"-.inf", "-.Inf", "-.INF"})) return -std::numeric_limits<double>::infinity();
  if (one_of(text, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
  return text;
}

}  // namespace linquant::config_detail
