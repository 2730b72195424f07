// One table per enum keeps spellings, parsing and error lists in agreement.
#include "linquant/config/enums.h"

#include <array>
#include <utility>

namespace linquant {
namespace {

template <typename Enum, size_t N>
using Table = std::array<std::pair<Enum, const char*>, N>;

constexpr Table<Algorithm, 2> kAlgorithms{{{Algorithm::vanilla, "vanilla"},
                                           {Algorithm::learnable, "learnable"}}};
constexpr Table<WeightDtype, 5> kWeightDtypes{{{WeightDtype::qint4, "qint4"},
                                               {WeightDtype::quint4, "quint4"},
                                               {WeightDtype::qint8, "qint8"},
                                               {WeightDtype::quint8, "quint8"},
                                               {WeightDtype::float32, "float32"}}};
constexpr Table<ActivationDtype, 2> kActivationDtypes{{{ActivationDtype::quint8, "quint8"},
                                                       {ActivationDtype::float32, "float32"}}};
constexpr Table<ObserverType, 3> kObserverTypes{
    {{ObserverType::moving_average_min_max, "moving_average_min_max"},
     {ObserverType::min_max, "min_max"},
     {ObserverType::ema_min_max, "ema_min_max"}}};
constexpr Table<QuantizationScheme, 2> kSchemes{{{QuantizationScheme::symmetric, "symmetric"},
                                                 {QuantizationScheme::affine, "affine"}}};

template <typename Enum, size_t N>
std::string name_of(const Table<Enum, N>& table, Enum value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "?";
}

// coremltools also accepts torch dtype spellings ("torch.qint8") for the dtype fields.
std::string strip_torch_prefix(const std::string& text) {
  const std::string prefix = "torch.";
  return text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text;
}

template <typename Enum, size_t N>
std::optional<Enum> parse_in(const Table<Enum, N>& table, const std::string& text) {
  for (const auto& [e, name] : table) {
    if (text == name) return e;
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
std::vector<std::string> names_in(const Table<Enum, N>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.second);
  return names;
}

}  // namespace

std::string to_string(Algorithm value) { return name_of(kAlgorithms, value); }
std::string to_string(WeightDtype value) { return name_of(kWeightDtypes, value); }
std::string to_string(ActivationDtype value) { return name_of(kActivationDtypes, value); }
std::string to_string(ObserverType value) { return name_of(kObserverTypes, value); }
std::string to_string(QuantizationScheme value) { return name_of(kSchemes, value); }

std::optional<Algorithm> parse_algorithm(const std::string& text) {
  return parse_in(kAlgorithms, text);
}
std::optional<WeightDtype> parse_weight_dtype(const std::string& text) {
  return parse_in(kWeightDtypes, strip_torch_prefix(text));
}
std::optional<ActivationDtype> parse_activation_dtype(const std::string& text) {
  return parse_in(kActivationDtypes, strip_torch_prefix(text));
}
std::optional<ObserverType> parse_observer_type(const std::string& text) {
  return parse_in(kObserverTypes, text);
}
std::optional<QuantizationScheme> parse_quantization_scheme(const std::string& text) {
  return parse_in(kSchemes, text);
}

const std::vector<std::string>& algorithm_names() {
  static const auto names = names_in(kAlgorithms);
  return names;
}
const std::vector<std::string>& weight_dtype_names() {
  static const auto names = names_in(kWeightDtypes);
  return names;
}
const std::vector<std::string>& activation_dtype_names() {
  static const auto names = names_in(kActivationDtypes);
  return names;
}
const std::vector<std::string>& observer_type_names() {
  static const auto names = names_in(kObserverTypes);
  return names;
}
const std::vector<std::string>& quantization_scheme_names() {
  static const auto names = names_in(kSchemes);
  return names;
}

}  // namespace linquant
