// The `linquant train` flow, step for step as coremltools' tutorial
// (docs/examples/optimize/torch/quantization/linear_quantization.py) runs it.
#include "train_run.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/adam.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <functional>
#include <iostream>
#include <optional>

#include "app_error.h"
#include "checkpoint.h"
#include "cli_common.h"
#include "coreml_export.h"
#include "image_data.h"
#include "linquant/common/file_io.h"
#include "linquant/common/warning.h"
#include "linquant/distributed/data_parallel.h"
#include "linquant/export/coreml/target.h"
#include "linquant/export/onnx/save.h"
#include "linquant/quant/quant_range.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "saved_model.h"
#include "signal_cleanup.h"
#include "staged_output.h"
#include "train_checkpoint.h"
#include "training.h"
#include "tutorial_models.h"
#include "worker_group.h"

namespace linquant::apps {
namespace {

void check_options(const TrainOptions& o) {
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (o.qat_epochs < 1) throw UsageError("--qat-epochs must be at least 1");
  if (o.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  if (!(o.lr > 0)) throw UsageError("--lr must be positive");
  if (o.train_size < 0) throw UsageError("--train-size must be >= 0");
  if (o.milestone_unit != "steps" && o.milestone_unit != "epochs") {
    throw UsageError("--milestone-unit must be steps or epochs, got \"" + o.milestone_unit + "\"");
  }
  if (!o.milestones.empty()) parse_milestones(o.milestones);
  coreml::parse_target(o.target);  // throws for unknown targets before any training
  refuse_checkpoints_with_workers(o.launch, o.checkpoint_every > 0 || o.resume);
}

// The schedule in steps (quantizer.step() calls, one per batch as in the tutorial). Default,
// when neither --milestones nor the config give one: observe and fake-quantize from the
// first QAT batch, freeze ranges and BatchNorm statistics for the last quarter.
Milestones qat_milestones(const TrainOptions& o, const LinearQuantizerConfig& config,
                          int64_t steps_per_epoch) {
  const int64_t scale = o.milestone_unit == "epochs" ? steps_per_epoch : 1;
  std::optional<Milestones> given;
  if (!o.milestones.empty())
    given = parse_milestones(o.milestones);
  else if (config.milestones())
    given = config.milestones();
  if (given) {
    Milestones steps{};
    for (size_t i = 0; i < 4; ++i) steps[i] = (*given)[i] * scale;
    return steps;
  }
  const int64_t total = steps_per_epoch * o.qat_epochs;
  const int64_t freeze = total * 3 / 4;
  return {0, 0, freeze, freeze};
}

// Evaluation must not feed test data into the observers: they pause and resume.
class ObserversPaused {
 public:
  explicit ObserversPaused(const GraphModule& model) {
    for (auto& [name, fq] : model->quantizers()) {
      saved_.emplace_back(fq, fq->is_observer_enabled());
      fq->disable_observer();
    }
  }
  ~ObserversPaused() {
    for (auto& [fq, on] : saved_) fq->enable_observer(on);
  }

 private:
  std::vector<std::pair<FakeQuantize, bool>> saved_;
};

int64_t parameter_bytes(const torch::nn::Module& module) {
  int64_t bytes = 0;
  for (const auto& p : module.parameters())
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  return bytes;
}

// A training phase of the run (float, then QAT): epochs of training, each followed by an
// evaluation on the test set in eval() mode.
struct TrainingPhase {
  std::string name;  // "float": progress labels "float 1/4", timer phase "float training"
  int epochs = 1;
  int first_epoch = 0;  // epochs trained before this phase (shuffling order, curve x)
  std::function<void(bool training)> set_training;
  std::function<void()> before_step;
  // Held while evaluating (e.g. observers paused); may be empty.
  std::function<std::shared_ptr<void>()> evaluate_guard;
  std::string eval_label;
  WorkerGroup workers;  // data-parallel workers; default: alone
  // Where a resumed run starts, and the epoch's running sums (kept for checkpoints).
  int start_epoch = 0;
  int64_t start_steps = 0;
  EpochProgress* progress = nullptr;
  // After every step: (epoch in the phase, steps of that epoch done); may be empty.
  std::function<void(int epoch, int64_t epoch_steps)> after_step;
};

// Returns the last evaluation; appends the training and test curves to `curves`.
EvalStats run_phase(const TrainingPhase& phase, const Forward& forward, const LossFn& loss_fn,
                    torch::optim::Optimizer& optimizer, const ImageSet& train,
                    const ImageSet& test, const TrainOptions& options, PhaseTimer& timer,
                    ChartSeries* curves) {
  const std::string timer_phase = phase.name + " training";
  timer.start(timer_phase);
  EvalStats last;
  for (int epoch = phase.start_epoch; epoch < phase.epochs; ++epoch) {
    phase.set_training(true);
    const bool resumed_epoch = epoch == phase.start_epoch && phase.start_steps > 0;
    if (phase.progress && !resumed_epoch) *phase.progress = EpochProgress{};
    TrainEpochArgs args;
    args.first_step = resumed_epoch ? phase.start_steps : 0;
    args.progress = phase.progress;
    if (phase.after_step) {
      args.after_step = [&phase, epoch](int64_t steps) { phase.after_step(epoch, steps); };
    }
    args.label = phase.name + " " + std::to_string(epoch + 1) + "/" + std::to_string(phase.epochs);
    args.batch_size = options.batch_size;
    args.seed = options.seed;
    args.epoch = phase.first_epoch + epoch;
    args.curve_x_start = phase.first_epoch + epoch;
    args.before_step = phase.before_step;
    args.workers = phase.workers;
    train_epoch(forward, loss_fn, optimizer, train, args, &curves->train);
    timer.start("evaluation");
    phase.set_training(false);
    {
      const std::shared_ptr<void> guard = phase.evaluate_guard ? phase.evaluate_guard() : nullptr;
      last = evaluate(forward, loss_fn, test, 512, phase.eval_label, phase.workers);
    }
    curves->test_accuracy.push_back({phase.first_epoch + epoch + 1.0, last.loss, last.accuracy});
    timer.start(timer_phase);
  }
  return last;
}

// After each step of `phase`: a checkpoint every --checkpoint-every steps of the whole run,
// and a checkpoint and Interrupted when a signal asked the run to stop.
std::function<void(int, int64_t)> checkpoint_hook(const Checkpoint& checkpoint,
                                                  const TrainOptions& o, const TrainResult& result,
                                                  TrainPosition& position, TrainPhase phase,
                                                  std::function<TrainState()> state) {
  return [&checkpoint, &o, &result, &position, phase, state](int epoch, int64_t epoch_steps) {
    const int64_t phase_start = phase == TrainPhase::qat ? o.epochs * result.steps_per_epoch : 0;
    position.phase = phase;
    position.epoch = epoch;
    position.epoch_steps = epoch_steps;
    checkpoint.after_step(phase_start + epoch * result.steps_per_epoch + epoch_steps,
                          (o.epochs + o.qat_epochs) * result.steps_per_epoch, o.checkpoint_every,
                          [&](torch::serialize::OutputArchive& archive) {
                            write_train_state(archive, position, result, state());
                          });
  };
}

}  // namespace

void apply_quick_mode(TrainOptions& options) {
  options.epochs = 1;
  options.qat_epochs = 1;
  options.train_size = 12000;
}

namespace {

// "W8A8", "W4A8", "W8A32" (float activations): the global config's bit widths.
std::string precision_label(const LinearQuantizerConfig& config) {
  const ModuleLinearQuantizerConfig global =
      config.global_config.value_or(ModuleLinearQuantizerConfig());
  const auto bits = [](const QuantRange& range, bool is_float) {
    return is_float ? 32 : range.n_bits();
  };
  return "W" +
         std::to_string(
             bits(quant_range(global.weight_dtype), global.weight_dtype == WeightDtype::float32)) +
         "A" +
         std::to_string(bits(quant_range(global.activation_dtype),
                             global.activation_dtype == ActivationDtype::float32));
}

}  // namespace

int run_train(const TrainOptions& options) {
  check_options(options);
  if (launches_workers(options.launch)) return launch_workers(options.launch);
  const WorkerGroup workers = WorkerGroup::from_environment(options.launch.worker_timeout());
  set_thread_count(options.threads);
  TrainResult result;
  result.workers = workers.size();
  PhaseTimer& timer = result.timer;

  // Everything the user typed is checked before the long work starts.
  timer.start("setup");
  LinearQuantizerConfig config =
      options.config_path.empty() ? LinearQuantizerConfig() : load_config_file(options.config_path);
  result.precision = precision_label(config);
  make_builtin_model(options.model);
  // Only rank 0 writes; the others' outputs would be the same.
  std::optional<StagedOutput> output;
  if (workers.writes_outputs())
    output.emplace(options.output, options.overwrite, OutputKind::train_folder);
  const std::optional<Checkpoint> checkpoint =
      output ? open_checkpoint(output->destination(), options.checkpoint_every, options.resume,
                               train_identity(options, config))
             : std::nullopt;

  timer.start("data");
  const IdxFiles files = find_idx_files(options.data_dir);
  ImageSet train = take(load_images(files.train_images, files.train_labels), options.train_size);
  ImageSet test = load_images(files.test_images, files.test_labels);
  if (train.images.size(2) != 28 || train.images.size(3) != 28 || test.images.size(2) != 28) {
    throw DataError("the built-in models take 28x28 images; " + files.train_images + " has " +
                    std::to_string(train.images.size(2)) + "x" +
                    std::to_string(train.images.size(3)));
  }
  const Normalization normalization = measure_normalization(train.images);
  result.input_mean = normalization.mean;
  result.input_std = normalization.std;
  normalize_in_place(train, normalization);
  normalize_in_place(test, normalization);
  const int64_t num_classes = std::max<int64_t>(train.num_classes(), test.num_classes());
  result.train_images = train.size();
  result.threads = at::get_num_threads();
  result.test_images = test.size();
  result.steps_per_epoch = num_batches(train.size(), options.batch_size);
  const LossFn loss_fn = nll_loss_fn();
  if (workers.writes_outputs()) {
    std::cerr << "linquant train: " << options.model << " on " << train.size() << " training / "
              << test.size() << " test images from " << options.data_dir << ", " << result.threads
              << (result.threads == 1 ? " thread" : " threads")
              << (workers.alone() ? ""
                                  : " in each of " + std::to_string(workers.size()) + " workers")
              << ", seed " << options.seed << "\n";
  }

  std::optional<DeferredSignals> deferred;  // with a checkpoint, signals stop at a step's end
  if (checkpoint) deferred.emplace();

  // 1. Float training (tutorial: Adam with eps 1e-7, NLL loss on LogSoftmax outputs).
  timer.start("float training");
  torch::manual_seed(options.seed);
  torch::nn::Sequential model = make_builtin_model(options.model, num_classes);
  // Workers run the float phase through the captured graph of the same modules (it shares
  // their parameters and BatchNorm statistics), so that BatchNorm is synchronized as in QAT,
  // and start from rank 0's initial weights, as DDP does.
  std::optional<GraphModule> synced_graph;
  std::optional<distributed::DataParallel> float_parallel;
  if (!workers.alone()) {
    synced_graph.emplace(capture_source({std::make_shared<torch::nn::Sequential>(model), nullptr}));
    distributed::DataParallelOptions sync_batch_norm_only;
    sync_batch_norm_only.synchronize_observers = false;
    float_parallel.emplace(*synced_graph, workers.process_group(), sync_batch_norm_only);
    float_parallel->broadcast_state();
  }
  const Forward float_forward = [&](const at::Tensor& x) {
    return synced_graph ? (*synced_graph)->forward(x) : model->forward(x);
  };
  torch::optim::Adam optimizer(model->parameters(),
                               torch::optim::AdamOptions(options.lr).eps(1e-7));

  // A resumed run restores the models and optimizers of its phase, results and curves.
  std::optional<TrainResume> resume;
  if (checkpoint && options.resume) {
    const int64_t step = checkpoint->load([&](torch::serialize::InputArchive& archive) {
      resume = read_train_state(archive);
      load_values(*resume->float_model, *model);
      if (resume->position.phase == TrainPhase::float_training) {
        optimizer.load(*resume->float_optimizer);
      }
    });
    std::cerr << "linquant train: resuming after step " << step << " from "
              << checkpoint->folder().string() << "\n";
    result.float_curves = resume->float_curves;
    result.qat_curves = resume->qat_curves;
  }
  const bool float_done = resume && resume->position.phase == TrainPhase::qat;
  TrainPosition position;  // what a checkpoint records
  TrainingPhase float_phase;
  float_phase.name = "float";
  float_phase.epochs = options.epochs;
  float_phase.set_training = [&](bool on) {
    on ? model->train() : model->eval();
    if (synced_graph) on ? (*synced_graph)->train() : (*synced_graph)->eval();
  };
  float_phase.eval_label = "  test (float)";
  float_phase.workers = workers;
  float_phase.progress = &position.progress;
  if (resume && !float_done) {
    float_phase.start_epoch = resume->position.epoch;
    float_phase.start_steps = resume->position.epoch_steps;
    position.progress = resume->position.progress;
  }
  if (checkpoint) {
    float_phase.after_step =
        checkpoint_hook(*checkpoint, options, result, position, TrainPhase::float_training,
                        [&] { return TrainState{model.get(), &optimizer}; });
  }
  if (float_done) {
    result.float_accuracy = resume->float_accuracy;
    result.float_loss = resume->float_loss;
  } else {
    const EvalStats float_eval = run_phase(float_phase, float_forward, loss_fn, optimizer, train,
                                           test, options, timer, &result.float_curves);
    result.float_accuracy = float_eval.accuracy;
    result.float_loss = float_eval.loss;
  }
  result.float_parameter_bytes = parameter_bytes(*model);
  // The float model as trained, before QAT changes the shared parameters.
  torch::nn::Sequential float_model(
      std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone()));
  float_model->eval();

  // 2. QAT: LinearQuantizer(model, config), prepare with an example input, a new optimizer
  // on the prepared model, quantizer.step() before every batch.
  timer.start("QAT training");
  const Milestones milestones = qat_milestones(options, config, result.steps_per_epoch);
  config = with_milestones(config, milestones);
  result.milestones_steps.assign(milestones.begin(), milestones.end());
  LinearQuantizer quantizer(model, config);
  const at::Tensor example = train.range(0, 1);
  GraphModule qmodel = quantizer.prepare({example});
  // Several workers: exact observers and BatchNorm statistics over the whole batch.
  std::optional<distributed::DataParallel> parallel;
  if (!workers.alone()) {
    parallel.emplace(qmodel, workers.process_group());
    parallel->broadcast_state();
  }
  const Forward qat_forward = [&](const at::Tensor& x) { return qmodel->forward(x); };
  torch::optim::Adam qat_optimizer(qmodel->parameters(),
                                   torch::optim::AdamOptions(options.lr).eps(1e-7));
  TrainingPhase qat_phase;
  qat_phase.progress = &position.progress;
  if (float_done) {
    quantizer.load_state(*resume->quantizer);
    qat_optimizer.load(*resume->qat_optimizer);
    qat_phase.start_epoch = resume->position.epoch;
    qat_phase.start_steps = resume->position.epoch_steps;
    position.progress = resume->position.progress;
  }
  if (checkpoint) {
    qat_phase.after_step = checkpoint_hook(
        *checkpoint, options, result, position, TrainPhase::qat,
        [&] { return TrainState{float_model.get(), nullptr, &quantizer, &qat_optimizer}; });
  }
  qat_phase.name = "QAT";
  qat_phase.epochs = options.qat_epochs;
  qat_phase.first_epoch = options.epochs;
  qat_phase.set_training = [&](bool on) { on ? qmodel->train() : qmodel->eval(); };
  qat_phase.before_step = [&] { quantizer.step(); };
  // Evaluation must not move the observers.
  qat_phase.evaluate_guard = [&] { return std::make_shared<ObserversPaused>(qmodel); };
  qat_phase.eval_label = "  test (fake quant)";
  qat_phase.workers = workers;
  const EvalStats qat_eval = run_phase(qat_phase, qat_forward, loss_fn, qat_optimizer, train,
                                       test, options, timer, &result.qat_curves);
  result.fake_quant_accuracy = qat_eval.accuracy;
  result.fake_quant_loss = qat_eval.loss;

  // 3. finalize(): BatchNorm folded, weights on the int8 grid, activation qparams frozen.
  timer.start("finalize");
  qmodel->eval();
  GraphModule fmodel = quantizer.finalize();
  const Report report = quantizer.report();

  timer.start("evaluation");
  const Forward final_forward = [&](const at::Tensor& x) { return fmodel->forward(x); };
  const EvalStats final_eval =
      evaluate(final_forward, loss_fn, test, 512, "  test (finalized)", workers);
  result.finalized_accuracy = final_eval.accuracy;
  result.finalized_loss = final_eval.loss;
  if (!output) return kExitOk;

  // 4. Core ML packages: the float model at fp16 (the usual baseline) and the W8A8 model.
  timer.start("export");
  const std::filesystem::path dir = output->dir();
  if (coreml_export_available()) {
    GraphModule float_graph(
        capture_source({std::make_shared<torch::nn::Sequential>(float_model), nullptr}));
    float_graph->eval();
    float_graph->record_shapes({example});
    PackageSettings settings;
    settings.target = options.target;
    result.float_package_bytes = static_cast<int64_t>(
        disk_size(export_package(float_graph, dir / "model_float16.mlpackage", settings)));
    result.quantized_package_bytes =
        static_cast<int64_t>(disk_size(export_package(fmodel, dir / "model.mlpackage", settings)));
  } else {
    warn("Core ML export is not available in this build: no .mlpackage written");
  }
  // The same W8A8 model for ONNX runtimes (QDQ form). A model whose ops have no ONNX mapping
  // yet still keeps everything else of the run.
  try {
    onnx::SaveOptions onnx_options;
    onnx_options.opset = onnx::minimum_opset(fmodel->graph());
    result.onnx_bytes = static_cast<int64_t>(
        disk_size(onnx::save(fmodel, (dir / "model.onnx").string(), onnx_options)));
  } catch (const ExportError& e) {
    warn(std::string("model.onnx not written: ") + e.what());
  }

  // 5. The saved quantized model, report, config, metrics and chart.
  timer.start("save");
  ModelRecipe recipe;
  recipe.builtin = options.model;
  recipe.source_name = options.model;
  recipe.config = config;
  recipe.normalization = normalization;
  recipe.num_classes = num_classes;
  const std::string metadata = train_metrics_json(options, result, config.to_json());
  save_quantized_model(dir / "quantized_model.pt", quantizer, recipe, metadata);
  result.saved_model_bytes = static_cast<int64_t>(disk_size(dir / "quantized_model.pt"));
  write_file_bytes(dir / "report.txt", report.to_string() + "\n");
  write_file_bytes(dir / "report.json", report.to_json() + "\n");
  write_file_bytes(dir / "config.yaml", config.to_yaml());
  result.chart_drawn =
      draw_training_chart(dir, "curves",
                          "linquant train: " + options.model + " float vs QAT (seed " +
                              std::to_string(options.seed) + ")",
                          result.float_curves, result.qat_curves);
  timer.stop();
  write_file_bytes(dir / "metrics.json",
                   train_metrics_json(options, result, config.to_json()) + "\n");
  output->commit();
  if (checkpoint) checkpoint->remove();  // the run is complete

  std::cout << "\n"
            << report.to_string() << "\n\n"
            << train_summary_table(options, result, output->destination().string());
  return kExitOk;
}

}  // namespace linquant::apps
