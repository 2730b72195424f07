// metrics.json and the final table of `linquant train`.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli_common.h"
#include "train_run.h"

namespace linquant::apps {
namespace {

nlohmann::json curve_json(const std::vector<CurvePoint>& points) {
  nlohmann::json out = nlohmann::json::array();
  for (const CurvePoint& p : points)
    out.push_back({{"epoch", p.epoch}, {"loss", p.loss}, {"accuracy", p.accuracy}});
  return out;
}

nlohmann::json bytes_or_null(int64_t bytes) {
  return bytes < 0 ? nlohmann::json(nullptr) : nlohmann::json(bytes);
}

std::string row(const std::string& a, const std::string& b, const std::string& c) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "  %-30s %12s  %s\n", a.c_str(), b.c_str(), c.c_str());
  return buffer;
}

std::string percent(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f %%", value);
  return buffer;
}

}  // namespace

std::string train_metrics_json(const TrainOptions& o, const TrainResult& r,
                               const std::string& config_json) {
  nlohmann::json times = nlohmann::json::object();
  for (const auto& [phase, seconds] : r.timer.phases()) times[phase] = seconds;
  times["total"] = r.timer.total();
  const nlohmann::json metrics = {
      {"command", "train"},
      {"options",
       {{"model", o.model},
        {"data", o.data_dir},
        {"config", o.config_path},
        {"epochs", o.epochs},
        {"qat_epochs", o.qat_epochs},
        {"batch_size", o.batch_size},
        {"lr", o.lr},
        {"seed", o.seed},
        {"threads", r.threads},
        {"workers", r.workers},
        {"quick", o.quick},
        {"train_size", o.train_size},
        {"target", o.target}}},
      {"data",
       {{"train_images", r.train_images},
        {"test_images", r.test_images},
        {"steps_per_epoch", r.steps_per_epoch},
        // What the exported models expect: (pixel / 255 - mean) / std.
        {"input_normalization", {{"mean", r.input_mean}, {"std", r.input_std}}}}},
      {"milestones_steps", r.milestones_steps},
      {"config", nlohmann::json::parse(config_json)},
      {"test_accuracy",
       {{"float", r.float_accuracy},
        {"fake_quant", r.fake_quant_accuracy},
        {"finalized", r.finalized_accuracy}}},
      {"test_loss",
       {{"float", r.float_loss},
        {"fake_quant", r.fake_quant_loss},
        {"finalized", r.finalized_loss}}},
      {"finalized_minus_float_points", r.finalized_accuracy - r.float_accuracy},
      {"sizes_bytes",
       {{"float_parameters_fp32", r.float_parameter_bytes},
        {"float16_package", bytes_or_null(r.float_package_bytes)},
        {"w8a8_package", bytes_or_null(r.quantized_package_bytes)},
        {"w8a8_onnx", bytes_or_null(r.onnx_bytes)},
        {"saved_quantized_model", r.saved_model_bytes}}},
      {"times_seconds", times},
      {"curves",
       {{"float_train", curve_json(r.float_curves.train)},
        {"qat_train", curve_json(r.qat_curves.train)},
        {"float_test", curve_json(r.float_curves.test_accuracy)},
        {"qat_test", curve_json(r.qat_curves.test_accuracy)}}},
  };
  return metrics.dump(2);
}

std::string train_summary_table(const TrainOptions& o, const TrainResult& r,
                                const std::string& output_dir) {
  std::ostringstream out;
  out << "Results (" << o.model << ", " << r.test_images << " test images, seed " << o.seed << ", "
      << r.threads << (r.threads == 1 ? " thread" : " threads")
      << (r.workers == 1 ? "" : " in each of " + std::to_string(r.workers) + " workers") << ")\n";
  out << row("model", "test acc.", "Core ML package");
  out << row("float", percent(r.float_accuracy),
             r.float_package_bytes < 0
                 ? "-"
                 : "fp16, " + format_bytes(static_cast<uint64_t>(r.float_package_bytes)));
  out << row("fake quant (prepared, eval)", percent(r.fake_quant_accuracy), "");
  out << row(
      "finalized " + r.precision, percent(r.finalized_accuracy),
      r.quantized_package_bytes < 0
          ? "-"
          : r.precision + ", " + format_bytes(static_cast<uint64_t>(r.quantized_package_bytes)));
  char delta[64];
  std::snprintf(delta, sizeof delta, "%+.2f points", r.finalized_accuracy - r.float_accuracy);
  out << row("finalized - float", delta, "");
  out << "\nWall time per phase\n";
  for (const auto& [phase, seconds] : r.timer.phases())
    out << row(phase, format_seconds(seconds), "");
  out << row("total", format_seconds(r.timer.total()), "");
  out << "\nOutput: " << output_dir << "\n";
  out << "  model.mlpackage, model_float16.mlpackage, "
      << (r.onnx_bytes < 0
              ? ""
              : "model.onnx (" + format_bytes(static_cast<uint64_t>(r.onnx_bytes)) + "), ")
      << "quantized_model.pt,\n"
         "  metrics.json, report.txt, report.json, config.yaml, curves.png (curves.dat, "
         "curves.gp)\n";
  return out.str();
}

}  // namespace linquant::apps
