// The enumerated choices of a quantization config, with their canonical spellings
// (the strings coremltools accepts), shared by the config parser and the numerics.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace linquant {

enum class Algorithm { vanilla, learnable };

// Weight dtypes; 4-bit types are 8-bit storage with a narrowed integer range.
enum class WeightDtype { qint4, quint4, qint8, quint8, float32 };

// Activations are quint8 (quantized) or float32 (left in float).
enum class ActivationDtype { quint8, float32 };

enum class ObserverType { moving_average_min_max, min_max, ema_min_max };

enum class QuantizationScheme { symmetric, affine };

std::string to_string(Algorithm value);
std::string to_string(WeightDtype value);
std::string to_string(ActivationDtype value);
std::string to_string(ObserverType value);
std::string to_string(QuantizationScheme value);

// Parsers return nullopt for an unknown spelling; callers build the error message
// because only they know the key path.
std::optional<Algorithm> parse_algorithm(const std::string& text);
std::optional<WeightDtype> parse_weight_dtype(const std::string& text);
std::optional<ActivationDtype> parse_activation_dtype(const std::string& text);
std::optional<ObserverType> parse_observer_type(const std::string& text);
std::optional<QuantizationScheme> parse_quantization_scheme(const std::string& text);

// The accepted spellings, in the order error messages list them.
const std::vector<std::string>& algorithm_names();
const std::vector<std::string>& weight_dtype_names();
const std::vector<std::string>& activation_dtype_names();
const std::vector<std::string>& observer_type_names();
const std::vector<std::string>& quantization_scheme_names();

}  // namespace linquant
