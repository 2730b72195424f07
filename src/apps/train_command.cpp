// `linquant train`: options and help; the flow is in train_run.cpp.
#include <memory>

#include "command.h"
#include "tutorial_models.h"
#include "train_run.h"

namespace linquant::apps {

Command add_train_command(CLI::App& root) {
  auto options = std::make_shared<TrainOptions>();
  CLI::App* app = root.add_subcommand(
      "train",
      "Train the tutorial net on Fashion-MNIST, then quantization-aware training with\n"
      "LinearQuantizer, finalize, evaluate and export W8A8 and float Core ML packages.");
  app->footer(
      "\nWith no options this runs coremltools' LinearQuantizer tutorial on Debian's\n"
      "Fashion-MNIST: 4 float epochs, 4 QAT epochs, Adam (lr 1e-3, eps 1e-7), batch 128.\n"
      "quantizer.step() runs before every QAT batch, as in the tutorial. Milestones come from\n"
      "--milestones, else from the config, else: observers and fake quant on from the first\n"
      "QAT step, ranges and BatchNorm statistics frozen for the last quarter of QAT.\n"
      "\nOutput folder: model.mlpackage (W8A8), model_float16.mlpackage, model.onnx (W8A8,\n"
      "QDQ form, for ONNX Runtime and other ONNX runtimes), quantized_model.pt (the\n"
      "finalized model, readable by `linquant export` and `inspect`), metrics.json,\n"
      "report.txt/.json, config.yaml, curves.png. It appears only when the run succeeds.\n"
      "\nExamples:\n"
      "  linquant train                                 # the tutorial, into ./linquant_tutorial\n"
      "  linquant train --quick -o /tmp/t               # 1+1 epochs on 12000 images\n"
      "  linquant train --model tutorial_bn --seed 3 --overwrite\n"
      "  linquant train --config examples/tutorial_qat.yaml\n"
      "  linquant train --milestones 0,0,3,3 --milestone-unit epochs\n"
      "  linquant train --data ~/mnist --epochs 2 --qat-epochs 1\n"
      "  linquant train --quick --nproc 2               # 2 data-parallel worker processes\n"
      "\nWith --nproc N (or under torchrun), N processes train one model: --batch-size is the\n"
      "global batch, each worker takes every N-th image of it, gradients, observer ranges and\n"
      "BatchNorm statistics are combined over the workers, and rank 0 writes the outputs.\n"
      "A worker that dies or hangs (--worker-timeout) stops them all: exit code 3.\n"
      "\nBad input (data, config, options, output folder) exits with code 2 and one line\n"
      "on stderr.");
  app->add_option("--data", options->data_dir,
                  "IDX data set folder (MNIST/Fashion-MNIST layout, .gz or plain)")
      ->capture_default_str();
  app->add_option("--config", options->config_path,
                  "LinearQuantizerConfig file (YAML or JSON); default config if absent");
  app->add_option("--model", options->model, "built-in net")
      ->check(CLI::IsMember(builtin_model_names()))
      ->capture_default_str();
  CLI::Option* epochs =
      app->add_option("--epochs", options->epochs, "float training epochs")->capture_default_str();
  CLI::Option* qat_epochs =
      app->add_option("--qat-epochs", options->qat_epochs, "QAT epochs")->capture_default_str();
  app->add_option("--batch-size", options->batch_size, "minibatch size")->capture_default_str();
  app->add_option("--lr", options->lr, "Adam learning rate (float and QAT)")->capture_default_str();
  app->add_option("--seed", options->seed,
                  "seed of weights and shuffling (same seed, same threads: same run)")
      ->capture_default_str();
  app->add_option("--threads", options->threads,
                  "CPU threads; 1 is fastest for the small tutorial nets, even on idle cores")
      ->capture_default_str();
  app->add_option("-o,--output", options->output, "output folder")->capture_default_str();
  app->add_option(
      "--milestones", options->milestones,
      "QAT schedule a,b,c,d: observers on, fake quant on, observers off, BatchNorm frozen");
  app->add_option("--milestone-unit", options->milestone_unit,
                  "unit of --milestones and the config's milestones")
      ->check(CLI::IsMember({"steps", "epochs"}))
      ->capture_default_str();
  app->add_option("--target", options->target, "Core ML deployment target (iOS17, iOS18)")
      ->capture_default_str();
  CLI::Option* train_size = app->add_option("--train-size", options->train_size,
                                            "use the first N training images (0: all)");
  app->add_flag("--quick", options->quick,
                "1 float + 1 QAT epoch on 12000 images (under a minute; the tests use it)");
  app->add_flag("--overwrite", options->overwrite, "replace an existing output folder");
  app->add_option("--checkpoint-every", options->checkpoint_every,
                  "save a checkpoint every N steps into OUTPUT.checkpoint (and on Ctrl-C)");
  app->add_flag("--resume", options->resume,
                "continue an interrupted run from OUTPUT.checkpoint (same options)");
  add_launch_options(*app, options->launch);

  Command command;
  command.app = app;
  command.run = [options, epochs, qat_epochs, train_size] {
    TrainOptions effective = *options;
    if (effective.quick) {
      // --quick sets what the user did not set explicitly.
      TrainOptions quick = effective;
      apply_quick_mode(quick);
      if (epochs->count() == 0) effective.epochs = quick.epochs;
      if (qat_epochs->count() == 0) effective.qat_epochs = quick.qat_epochs;
      if (train_size->count() == 0) effective.train_size = quick.train_size;
    }
    return run_train(effective);
  };
  return command;
}

}  // namespace linquant::apps
