// report(): the rows from the prepared graph, and their text and JSON forms.
#include "linquant/quantizer/report.h"

#include <ATen/ATen.h>

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "linquant/ir/attribute_keys.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

ReportRow row_for(const std::string& name, const std::string& type, const FakeQuantizeOptions& o,
                  const LinearQuantizerConfig& config) {
  ReportRow row;
  row.name = name;
  row.type = type;
  row.device = "cpu";
  row.algorithm = to_string(config.algorithm());
  row.qscheme = to_string(o.scheme);
  row.per_channel = o.per_channel();
  row.dtype = o.range.is_unsigned ? "torch.quint8" : "torch.qint8";
  row.qmin = o.range.quant_min;
  row.qmax = o.range.quant_max;
  row.error = NAN;
  row.num_params = -1;
  return row;
}

// The weight the quantizer sees: with a fused BatchNorm, scaled by gamma / sigma.
at::Tensor effective_weight(const ir::Graph& graph, const ir::Node& node) {
  at::Tensor weight = graph.tensor(node.attrs.s(ir::attr::weight)).tensor.detach();
  if (!node.attrs.has(ir::attr::bn_running_var)) return weight;
  const at::Tensor var = graph.tensor(node.attrs.s(ir::attr::bn_running_var)).tensor.detach();
  at::Tensor gamma = node.attrs.has(ir::attr::bn_weight)
                         ? graph.tensor(node.attrs.s(ir::attr::bn_weight)).tensor.detach()
                         : at::ones_like(var);
  const at::Tensor factor = gamma / at::sqrt(var + node.attrs.f(ir::attr::bn_eps));
  std::vector<int64_t> shape(weight.dim(), 1);
  shape[node.op == ir::Op::conv_transpose ? 1 : 0] = -1;
  return weight * factor.reshape(shape);
}

std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  std::ostringstream text;
  text << std::fixed << std::setprecision(5) << value;
  return text.str();
}

std::vector<std::string> cells(const ReportRow& row) {
  return {row.name,
          row.type,
          row.device,
          row.algorithm,
          row.qscheme,
          row.per_channel ? "True" : "False",
          row.dtype,
          std::to_string(row.qmin),
          std::to_string(row.qmax),
          format_float(row.error),
          std::to_string(row.num_params)};
}

}  // namespace

Report LinearQuantizer::report() const {
  Report report;
  if (!prepared_) return report;
  const ir::Graph& graph = prepared_->graph();
  std::set<std::string> listed;
  const at::NoGradGuard no_grad;
  for (const ir::Node& node : graph.nodes()) {
    if (node.op == ir::Op::fake_quantize) {
      const std::string& name = node.attrs.s(ir::attr::quantizer);
      if (!listed.insert(name).second) continue;
      report.rows.push_back(row_for(name, "activation", graph.quantizers().at(name).options, config_));
    } else if (node.attrs.has(ir::attr::weight_quantizer)) {
      const std::string& name = node.attrs.s(ir::attr::weight_quantizer);
      if (!listed.insert(name).second) continue;
      const FakeQuantizeOptions& options = graph.quantizers().at(name).options;
      ReportRow row = row_for(node.scope.module_name, "weight", options, config_);
      const at::Tensor weight = effective_weight(graph, node);
      const FakeQuantize fq = prepared_->quantizer(name);
      // A learnable quantizer's zero point is a float parameter: its qparams as finalize()
      // would take them.
      const auto [scale, zero_point] =
          fq->is_learnable() ? fq->calculate_qparams() : std::make_pair(fq->scale, fq->zero_point);
      const at::Tensor quantized = fake_quantize(weight, scale, zero_point, options.ch_axis,
                                                 options.range.quant_min, options.range.quant_max);
      row.error = (quantized - weight).pow(2).mean().sqrt().item<double>();
      row.num_params = weight.numel();
      report.rows.push_back(row);
    }
  }
  return report;
}

std::string Report::to_string() const {
  const std::vector<std::string> header = {"name",  "type", "device", "algorithm", "qscheme", "per_channel",
                                           "dtype", "qmin", "qmax",   "error",     "#params"};
  std::vector<std::vector<std::string>> table = {header};
  for (const ReportRow& row : rows) table.push_back(cells(row));
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : table) {
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  }
  std::ostringstream text;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t c = 0; c < line.size(); ++c) {
      text << (c ? " | " : "") << std::string(width[c] - line[c].size(), ' ') << line[c];
    }
    text << "\n";
  };
  emit(header);
  std::vector<std::string> rule;
  for (size_t w : width) rule.emplace_back(w, '-');
  emit(rule);
  for (size_t r = 1; r < table.size(); ++r) emit(table[r]);
  return text.str();
}

std::string Report::to_json() const {
  nlohmann::json rows_json = nlohmann::json::array();
  for (const ReportRow& row : rows) {
    rows_json.push_back({{"name", row.name},
                         {"type", row.type},
                         {"device", row.device},
                         {"algorithm", row.algorithm},
                         {"qscheme", row.qscheme},
                         {"per_channel", row.per_channel},
                         {"dtype", row.dtype},
                         {"qmin", row.qmin},
                         {"qmax", row.qmax},
                         {"error", std::isnan(row.error) ? nlohmann::json(nullptr) : nlohmann::json(row.error)},
                         {"num_params", row.num_params}});
  }
  return rows_json.dump(2);
}

std::ostream& operator<<(std::ostream& out, const Report& report) { return out << report.to_string(); }

}  // namespace linquant
