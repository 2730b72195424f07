// `linquant quantize`: QAT or calibration of a TorchScript model on an IDX data set, then
// finalize and save the quantized model (readable by `export` and `inspect`).
#include <ATen/ATen.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "app_error.h"
#include "checkpoint.h"
#include "cli_common.h"
#include "command.h"
#include "coreml_export.h"
#include "image_data.h"
#include "linquant/common/file_io.h"
#include "linquant/data/idx_dataset.h"
#include "linquant/distributed/data_parallel.h"
#include "phase_timer.h"
#include "progress_bar.h"
#include "saved_model.h"
#include "signal_cleanup.h"
#include "staged_output.h"
#include "training.h"
#include "worker_group.h"
#include "worker_launch.h"

namespace linquant::apps {
namespace {

struct QuantizeOptions {
  std::string model_path;
  std::string config_path;
  std::string data_dir = kDefaultFashionMnistDir;
  int64_t steps = 500;
  bool calibrate = false;
  std::string milestones;   // in steps; default [0, 0, 3N/4, 3N/4] for QAT
  std::string input_shape;  // C,H,W; default: the data's own
  int64_t batch_size = 64;
  double lr = 1e-4;
  uint64_t seed = 0;
  int threads = 0;
  int64_t eval_size = 0;  // test images evaluated (0: all)
  std::string output;
  bool overwrite = false;
  int64_t checkpoint_every = 0;  // steps; with --resume alone, checkpoints only on signals
  bool resume = false;
  LaunchOptions launch;
};

bool checkpointing(const QuantizeOptions& o) { return o.checkpoint_every > 0 || o.resume; }

// What a resumed run must share with the interrupted one: the checkpoint holds the rest.
std::string run_identity(const QuantizeOptions& o, const ModelRecipe& recipe,
                         const Milestones& milestones) {
  nlohmann::json identity = {
      {"model_bytes", recipe.torchscript.size()},
      {"model_hash", std::to_string(std::hash<std::string>{}(recipe.torchscript))},
      {"config", recipe.config.to_json()},
      {"data", o.data_dir},
      {"steps", o.steps},
      {"milestones", {milestones[0], milestones[1], milestones[2], milestones[3]}},
      {"input_shape", o.input_shape},
      {"batch_size", o.batch_size},
      {"lr", o.lr},
      {"seed", o.seed}};
  return identity.dump();
}

Milestones schedule(const QuantizeOptions& o, const LinearQuantizerConfig& config) {
  if (o.calibrate) return {0, o.steps, o.steps, 0};  // coremltools' calibration recipe
  if (!o.milestones.empty()) return parse_milestones(o.milestones);
  if (config.milestones()) return *config.milestones();
  return {0, 0, o.steps * 3 / 4, o.steps * 3 / 4};
}

// Calibration: forward passes only, in eval() mode (BatchNorm on running statistics, no
// dropout); the observers record ranges, nothing is trained.
void calibrate(LinearQuantizer& quantizer, GraphModule model, const ImageSet& data,
               const QuantizeOptions& o, const WorkerGroup& workers) {
  const torch::NoGradGuard no_grad;
  model->eval();
  ProgressBar bar("calibrate", o.steps);
  int64_t seen = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const int64_t epoch = step * o.batch_size / data.size();
    const int64_t begin = step * o.batch_size % data.size();
    const at::Tensor order = epoch_order(data.size(), o.seed, epoch);
    const at::Tensor batch = order.slice(0, begin, std::min(data.size(), begin + o.batch_size));
    check_batch_shares(batch.size(0), workers, "calibration step " + std::to_string(step + 1));
    const at::Tensor index = workers.shard(batch);
    quantizer.step();
    model->forward(data.batch(index));
    seen += batch.size(0);
    bar.update(step + 1, seen, "");
  }
  bar.finish("");
}

// QAT for exactly `steps` batches, epochs of the data set in turn; with a checkpoint, resumed
// from it and saved every --checkpoint-every steps and when a signal asks the run to stop.
void train_steps(LinearQuantizer& quantizer, GraphModule model, const ImageSet& data,
                 const QuantizeOptions& o, const Checkpoint* checkpoint,
                 const WorkerGroup& workers) {
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(o.lr).eps(1e-7));
  const int64_t per_epoch = num_batches(data.size(), o.batch_size);
  int64_t start = 0;
  if (checkpoint && o.resume) {
    start = checkpoint->load([&](torch::serialize::InputArchive& archive) {
      quantizer.load_state(archive);
      load_optimizer(archive, optimizer);
    });
    std::cerr << "linquant quantize: resuming at step " << start << " of " << o.steps << " from "
              << checkpoint->folder().string() << "\n";
  }
  const Checkpoint::StateWriter write_state = [&](torch::serialize::OutputArchive& archive) {
    quantizer.save_state(archive);
    save_optimizer(archive, optimizer);
  };
  std::optional<DeferredSignals> deferred;
  if (checkpoint) deferred.emplace();
  const Forward forward = [&](const at::Tensor& x) { return model->forward(x); };
  for (int64_t done = start / per_epoch * per_epoch, epoch = start / per_epoch; done < o.steps;
       ++epoch) {
    const int64_t steps = std::min(per_epoch, o.steps - done);
    TrainEpochArgs args;
    args.label = "QAT " + std::to_string(done + steps) + "/" + std::to_string(o.steps);
    args.batch_size = o.batch_size;
    args.seed = o.seed;
    args.epoch = epoch;
    args.first_step = std::max<int64_t>(0, start - done);
    args.before_step = [&] { quantizer.step(); };
    args.workers = workers;
    if (checkpoint) {
      args.after_step = [&, done](int64_t in_epoch) {
        checkpoint->after_step(done + in_epoch, o.steps, o.checkpoint_every, write_state);
      };
    }
    ImageSet epoch_data = data;
    if (steps < per_epoch) {
      // A partial last epoch: a random subset of `steps` batches.
      const at::Tensor pick =
          epoch_order(data.size(), o.seed + 1, epoch).slice(0, 0, steps * o.batch_size);
      epoch_data.images = data.images.index_select(0, pick);
      epoch_data.labels = data.labels.index_select(0, pick);
    }
    train_epoch(forward, cross_entropy_fn(), optimizer, epoch_data, args, nullptr);
    done += steps;
  }
}

int run_quantize(const QuantizeOptions& o) {
  if (o.steps < 1) throw UsageError("--steps must be at least 1");
  if (o.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  if (o.calibrate && !o.milestones.empty())
    throw UsageError("--calibrate sets the milestones; drop --milestones");
  refuse_checkpoints_with_workers(o.launch, checkpointing(o));
  if (launches_workers(o.launch)) return launch_workers(o.launch);
  const WorkerGroup workers = WorkerGroup::from_environment(o.launch.worker_timeout());
  // Workers on one machine share its cores.
  set_thread_count(o.threads > 0 ? o.threads
                                 : std::max(1, default_thread_count() / workers.local_size()));
  PhaseTimer timer;
  timer.start("setup");
  ModelRecipe recipe;
  recipe.torchscript = read_file_bytes(o.model_path);
  recipe.source_name = o.model_path;
  LinearQuantizerConfig config =
      o.config_path.empty() ? LinearQuantizerConfig() : load_config_file(o.config_path);
  config = with_milestones(config, schedule(o, config));
  recipe.config = config;
  SourceModel source = load_source_model(recipe);
  if (o.calibrate && checkpointing(o)) {
    throw UsageError("--checkpoint-every and --resume are for QAT, not --calibrate");
  }
  // Only rank 0 writes; the others' outputs would be the same.
  std::optional<StagedOutput> output;
  if (workers.writes_outputs()) output.emplace(o.output, o.overwrite, OutputKind::file);
  const std::optional<Checkpoint> checkpoint =
      output ? open_checkpoint(output->destination(), o.checkpoint_every, o.resume,
                               o.calibrate ? "" : run_identity(o, recipe, *config.milestones()))
             : std::nullopt;

  timer.start("data");
  const IdxFiles files = find_idx_files(o.data_dir);
  ImageSet train = load_images(files.train_images, files.train_labels);
  ImageSet test = take(load_images(files.test_images, files.test_labels), o.eval_size);
  std::vector<int64_t> shape = {train.images.size(1), train.images.size(2), train.images.size(3)};
  if (!o.input_shape.empty()) shape = parse_shape(o.input_shape, "--input-shape");
  if (shape.size() != 3)
    throw UsageError("--input-shape takes C,H,W (the batch dimension is added)");
  recipe.normalization = measure_normalization(train.images);
  for (ImageSet* set : {&train, &test}) {
    normalize_in_place(*set, recipe.normalization);
    adapt_images(*set, shape[0], shape[1], shape[2]);
  }
  recipe.num_classes = train.num_classes();

  timer.start("prepare");
  torch::manual_seed(o.seed);
  std::unique_ptr<LinearQuantizer> quantizer = make_quantizer(source, config);
  GraphModule model = quantizer->prepare({train.range(0, 1)});
  // Several workers: exact observers and BatchNorm statistics over the whole batch.
  std::optional<distributed::DataParallel> parallel;
  if (!workers.alone()) {
    parallel.emplace(model, workers.process_group());
    parallel->broadcast_state();
  }

  timer.start(o.calibrate ? "calibration" : "QAT training");
  if (o.calibrate)
    calibrate(*quantizer, model, train, o, workers);
  else
    train_steps(*quantizer, model, train, o, checkpoint ? &*checkpoint : nullptr, workers);

  timer.start("evaluation");
  model->eval();
  const Forward prepared_forward = [&](const at::Tensor& x) { return model->forward(x); };
  // Observers stay as the schedule left them, except that test data must not reach them.
  std::vector<std::pair<FakeQuantize, bool>> observers;
  for (auto& [name, fq] : model->quantizers()) {
    observers.emplace_back(fq, fq->is_observer_enabled());
    fq->disable_observer();
  }
  const EvalStats fake_quant = evaluate(prepared_forward, cross_entropy_fn(), test, o.batch_size,
                                        "  test (fake quant)", workers);
  for (auto& [fq, on] : observers) fq->enable_observer(on);

  timer.start("finalize");
  GraphModule finalized = quantizer->finalize();
  timer.start("evaluation");
  const Forward final_forward = [&](const at::Tensor& x) { return finalized->forward(x); };
  const EvalStats final_eval = evaluate(final_forward, cross_entropy_fn(), test, o.batch_size,
                                        "  test (finalized)", workers);
  if (!output) return kExitOk;

  timer.start("save");
  char metadata[256];
  std::snprintf(
      metadata, sizeof metadata,
      "{\"command\": \"quantize\", \"mode\": \"%s\", \"steps\": %lld, "
      "\"test_accuracy\": {\"fake_quant\": %.4f, \"finalized\": %.4f}, \"test_images\": %lld}",
      o.calibrate ? "calibration" : "qat", static_cast<long long>(o.steps), fake_quant.accuracy,
      final_eval.accuracy, static_cast<long long>(test.size()));
  save_quantized_model(output->dir() / "model.pt", *quantizer, recipe, metadata);
  timer.stop();
  output->commit("model.pt");
  if (checkpoint) checkpoint->remove();  // the run is complete

  std::cout << quantizer->report().to_string() << "\n\n";
  std::printf("%s of %s: %lld steps, batch %lld\n", o.calibrate ? "Calibration" : "QAT",
              o.model_path.c_str(), static_cast<long long>(o.steps),
              static_cast<long long>(o.batch_size));
  std::printf("  test accuracy (%lld images): fake quant %.2f %%, finalized %.2f %%\n",
              static_cast<long long>(test.size()), fake_quant.accuracy, final_eval.accuracy);
  for (const auto& [phase, seconds] : timer.phases())
    std::printf("  %-14s %s\n", phase.c_str(), format_seconds(seconds).c_str());
  std::printf(
      "Saved %s (%s); export it with: linquant export %s -o MODEL.mlpackage (or "
      "--format onnx -o MODEL.onnx)\n",
      output->destination().c_str(), format_bytes(disk_size(output->destination())).c_str(),
      output->destination().c_str());
  return kExitOk;
}

}  // namespace

Command add_quantize_command(CLI::App& root) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* app = root.add_subcommand(
      "quantize",
      "QAT or calibration of a TorchScript model with LinearQuantizer, then finalize and save.");
  app->footer(
      "\nThe model is a TorchScript file (torch.jit.trace/script in Python) classifying the "
      "images\n"
      "of an IDX data set; images are normalized with the training set's mean and std and, with\n"
      "--input-shape, repeated to C channels and resized to HxW. QAT trains --steps batches with\n"
      "Adam and cross-entropy, calling quantizer.step() before each; --calibrate only observes\n"
      "(milestones [0,N,N,0], no training). The output is a saved quantized model file.\n"
      "\nExamples:\n"
      "  linquant quantize --model net.pt --steps 500 -o net_w8a8.pt\n"
      "  linquant quantize --model resnet18.pt --config examples/resnet18/qat_config.yaml \\\n"
      "      --input-shape 3,32,32 --steps 300 --eval-size 2000 -o resnet18_w8a8.pt\n"
      "  linquant quantize --model net.pt --calibrate --steps 100 -o net_calibrated.pt\n"
      "  linquant quantize --model net.pt --steps 500 --nproc 2 -o net_w8a8.pt\n"
      "\nWith --nproc N (or under torchrun), N processes share every batch (--batch-size is the\n"
      "global batch) and the machine's cores; rank 0 writes the output. A worker that dies\n"
      "or hangs (--worker-timeout) stops them all: exit code 3.\n");
  app->add_option("--model", o->model_path, "TorchScript model file")->required();
  app->add_option("--config", o->config_path, "LinearQuantizerConfig file (YAML or JSON)");
  app->add_option("--data", o->data_dir, "IDX data set folder")->capture_default_str();
  app->add_option("--steps", o->steps, "training (or calibration) batches")->capture_default_str();
  app->add_flag("--calibrate", o->calibrate, "observe only: milestones [0,N,N,0], no training");
  app->add_option("--milestones", o->milestones,
                  "QAT schedule in steps a,b,c,d (default: the config's, else 0,0,3N/4,3N/4)");
  app->add_option("--input-shape", o->input_shape, "model input C,H,W (default: the images' own)");
  app->add_option("--batch-size", o->batch_size, "minibatch size")->capture_default_str();
  app->add_option("--lr", o->lr, "Adam learning rate")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the shuffling")->capture_default_str();
  app->add_option("--threads", o->threads, "CPU threads (default: every core)");
  app->add_option("--eval-size", o->eval_size, "test images to evaluate (0: all)")
      ->capture_default_str();
  app->add_option("-o,--output", o->output, "the saved quantized model (.pt)")->required();
  app->add_flag("--overwrite", o->overwrite, "replace an existing output file");
  app->add_option("--checkpoint-every", o->checkpoint_every,
                  "save a checkpoint every N steps into OUTPUT.checkpoint (and on Ctrl-C)");
  app->add_flag("--resume", o->resume,
                "continue an interrupted run from OUTPUT.checkpoint (same options)");
  add_launch_options(*app, o->launch);
  return {app, [o] { return run_quantize(*o); }};
}

}  // namespace linquant::apps
