// The per-quantizer table of LinearQuantizer::report(), as data and as text.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace linquant {

struct ReportRow {
  std::string name;       // weight: the module; activation: the quantizer
  std::string type;       // "weight" or "activation"
  std::string device;     // "cpu"
  std::string algorithm;  // "vanilla"
  std::string qscheme;    // "symmetric" or "affine"
  bool per_channel = false;
  std::string dtype;  // storage type as PyTorch names it: "torch.qint8", "torch.quint8"
  int64_t qmin = 0;
  int64_t qmax = 0;
  double error = 0.0;       // weights: RMSE of the fake quantization; activations: NaN
  int64_t num_params = -1;  // weights: element count; activations: -1
};

class Report {
 public:
  std::vector<ReportRow> rows;

  // coremltools' layout: right-aligned columns joined by " | ", a dashed rule under the
  // header, floats with 5 decimals.
  std::string to_string() const;
  // A JSON array of objects keyed like the columns ("#params" as "num_params").
  std::string to_json() const;
};

std::ostream& operator<<(std::ostream& out, const Report& report);

}  // namespace linquant
