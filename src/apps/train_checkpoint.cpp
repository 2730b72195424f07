// Numbers travel as a JSON string (doubles print with 17 digits, so they read back exactly);
// models, optimizers and the quantizer as sub-archives.
#include "train_checkpoint.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <nlohmann/json.hpp>

#include "app_error.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant::apps {
namespace {

using nlohmann::json;

json points_json(const std::vector<CurvePoint>& points) {
  json list = json::array();
  for (const CurvePoint& p : points) list.push_back({p.epoch, p.loss, p.accuracy});
  return list;
}

std::vector<CurvePoint> points_of(const json& list) {
  std::vector<CurvePoint> points;
  for (const json& p : list) points.push_back({p.at(0).get<double>(), p.at(1), p.at(2)});
  return points;
}

json series_json(const ChartSeries& series) {
  return {{"train", points_json(series.train)}, {"test", points_json(series.test_accuracy)}};
}

ChartSeries series_of(const json& value) {
  return {points_of(value.at("train")), points_of(value.at("test"))};
}

template <typename Save>
void write_part(torch::serialize::OutputArchive& archive, const std::string& key, Save save) {
  torch::serialize::OutputArchive part;
  save(part);
  archive.write(key, part);
}

std::shared_ptr<torch::serialize::InputArchive> read_part(torch::serialize::InputArchive& archive,
                                                          const std::string& key) {
  auto part = std::make_shared<torch::serialize::InputArchive>();
  if (!archive.try_read(key, *part)) return nullptr;
  return part;
}

// A module's parameters and buffers in their order: the float model and its clone (which
// Sequential::clone renames "0", "1", ...) share them by position, not by name.
void save_values(torch::serialize::OutputArchive& archive, const torch::nn::Module& module) {
  int64_t i = 0;
  for (const at::Tensor& t : module.parameters()) archive.write("p" + std::to_string(i++), t);
  i = 0;
  for (const at::Tensor& t : module.buffers()) archive.write("b" + std::to_string(i++), t, true);
}

}  // namespace

void load_values(torch::serialize::InputArchive& archive, torch::nn::Module& module) {
  const at::NoGradGuard no_grad;
  const auto load = [&](const std::vector<at::Tensor>& targets, const std::string& prefix,
                        bool is_buffer) {
    for (size_t i = 0; i < targets.size(); ++i) {
      at::Tensor value;
      if (!archive.try_read(prefix + std::to_string(i), value, is_buffer) ||
          value.sizes() != targets[i].sizes() || value.dtype() != targets[i].dtype()) {
        throw UsageError("the checkpoint's float model does not match the built-in model");
      }
      at::Tensor target = targets[i];
      target.copy_(value);
    }
  };
  load(module.parameters(), "p", false);
  load(module.buffers(), "b", true);
}

std::string train_identity(const TrainOptions& o, const LinearQuantizerConfig& config) {
  return json{{"data", o.data_dir},
              {"config", config.to_json()},
              {"model", o.model},
              {"epochs", o.epochs},
              {"qat_epochs", o.qat_epochs},
              {"batch_size", o.batch_size},
              {"lr", o.lr},
              {"seed", o.seed},
              {"milestones", o.milestones},
              {"milestone_unit", o.milestone_unit},
              {"target", o.target},
              {"train_size", o.train_size}}
      .dump();
}

void write_train_state(torch::serialize::OutputArchive& archive, const TrainPosition& position,
                       const TrainResult& result, const TrainState& state) {
  const EpochProgress& p = position.progress;
  const json numbers = {{"phase", static_cast<int>(position.phase)},
                        {"epoch", position.epoch},
                        {"epoch_steps", position.epoch_steps},
                        {"progress",
                         {p.loss_sum, p.window_loss, p.correct, p.seen, p.window_correct,
                          p.window_seen, p.window_steps}},
                        {"float_accuracy", result.float_accuracy},
                        {"float_loss", result.float_loss},
                        {"float_parameter_bytes", result.float_parameter_bytes},
                        {"float_curves", series_json(result.float_curves)},
                        {"qat_curves", series_json(result.qat_curves)}};
  archive.write("train_state", c10::IValue(numbers.dump()));
  write_part(archive, "float_model", [&](auto& part) { save_values(part, *state.float_model); });
  if (state.float_optimizer) {
    write_part(archive, "float_optimizer", [&](auto& part) { state.float_optimizer->save(part); });
  }
  if (state.quantizer) {
    write_part(archive, "quantizer", [&](auto& part) { state.quantizer->save_state(part); });
    write_part(archive, "qat_optimizer", [&](auto& part) { state.qat_optimizer->save(part); });
  }
}

TrainResume read_train_state(torch::serialize::InputArchive& archive) {
  c10::IValue text;
  if (!archive.try_read("train_state", text) || !text.isString()) {
    throw UsageError("the checkpoint holds no `linquant train` state");
  }
  const json numbers = json::parse(text.toStringRef());
  TrainResume resume;
  TrainPosition& position = resume.position;
  position.phase = static_cast<TrainPhase>(numbers.at("phase").get<int>());
  position.epoch = numbers.at("epoch");
  position.epoch_steps = numbers.at("epoch_steps");
  const json& p = numbers.at("progress");
  position.progress = {p.at(0), p.at(1), p.at(2), p.at(3), p.at(4), p.at(5), p.at(6)};
  resume.float_accuracy = numbers.at("float_accuracy");
  resume.float_loss = numbers.at("float_loss");
  resume.float_parameter_bytes = numbers.at("float_parameter_bytes");
  resume.float_curves = series_of(numbers.at("float_curves"));
  resume.qat_curves = series_of(numbers.at("qat_curves"));
  resume.float_model = read_part(archive, "float_model");
  resume.float_optimizer = read_part(archive, "float_optimizer");
  resume.quantizer = read_part(archive, "quantizer");
  resume.qat_optimizer = read_part(archive, "qat_optimizer");
  const bool qat = position.phase == TrainPhase::qat;
  if (!resume.float_model ||
      (qat ? !resume.quantizer || !resume.qat_optimizer : !resume.float_optimizer)) {
    throw UsageError("the checkpoint's `linquant train` state is incomplete");
  }
  return resume;
}

}  // namespace linquant::apps
