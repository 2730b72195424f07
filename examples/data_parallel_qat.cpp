// Data-parallel QAT with linquant::distributed: one process per rank, launched the torchrun
// way (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment; without them it trains
// alone, with local BatchNorm; WORLD_SIZE=1 runs alone through the data-parallel path). A small
// Conv-BN net learns a synthetic task for --steps steps of a global batch (each rank takes its
// contiguous share), crossing the four milestones (observers and fake quantization on, BatchNorm
// statistics frozen, observers off); rank 0 prints the loss of the whole batch each step
// (all-reduced) and writes OUT: the model's parameters and buffers and the losses, as a
// torch::serialize archive.
//
//   WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 data_parallel_qat OUT.pt &
//   WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 data_parallel_qat OUT.pt
//
// Options: --steps N (20), --global-batch N (8), --timeout-seconds S (60: a dead or hung peer
// stops the others after this), --exit-at-step N and --hang-at-step N (test hooks: this rank
// exits there at once, or stops responding).
#include <linquant/distributed/data_parallel.h>
#include <linquant/distributed/launch.h>
#include <linquant/linquant.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace nn = torch::nn;

nn::Sequential conv_bn_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 8, 3).bias(false)), nn::BatchNorm2d(8),
                        nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(8, 8, 3).bias(false)),
                        nn::BatchNorm2d(8), nn::ReLU(), nn::Flatten(), nn::Linear(8 * 8 * 8, 4));
}

struct Options {
  std::string out;
  int64_t steps = 20;
  int64_t global_batch = 8;
  int64_t timeout_seconds = 60;
  int64_t exit_at_step = -1;
  int64_t hang_at_step = -1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    auto value = [&] {
      if (k + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return std::stoll(argv[++k]);
    };
    if (arg == "--steps") {
      o.steps = value();
    } else if (arg == "--global-batch") {
      o.global_batch = value();
    } else if (arg == "--timeout-seconds") {
      o.timeout_seconds = value();
    } else if (arg == "--exit-at-step") {
      o.exit_at_step = value();
    } else if (arg == "--hang-at-step") {
      o.hang_at_step = value();
    } else if (o.out.empty() && arg.rfind("--", 0) != 0) {
      o.out = arg;
    } else {
      throw std::runtime_error("unknown argument " + arg);
    }
  }
  if (o.out.empty()) throw std::runtime_error("usage: data_parallel_qat OUT.pt [options]");
  return o;
}

int run(const Options& o) {
  at::set_num_threads(1);
  const auto placement = linquant::distributed::placement_from_environment();
  const int world = placement ? placement->world_size : 1;
  const int rank = placement ? placement->rank : 0;
  if (o.global_batch % world != 0)
    throw std::runtime_error("--global-batch must divide by WORLD_SIZE");
  const int64_t batch = o.global_batch / world;

  // The same data and initial weights on every rank (broadcast_state would align them anyway).
  torch::manual_seed(0);
  const at::Tensor images = torch::randn({o.steps * o.global_batch, 1, 12, 12});
  const at::Tensor labels = (images.mean({1, 2, 3}) > 0).to(at::kLong) +
                            2 * (images.narrow(2, 0, 6).mean({1, 2, 3}) > 0).to(at::kLong);
  linquant::LinearQuantizerConfig config;
  linquant::ModuleLinearQuantizerConfig global;
  global.set_milestones(linquant::Milestones{0, o.steps / 2, o.steps / 2 + 2, o.steps * 3 / 4});
  config.set_global(global);
  linquant::LinearQuantizer quantizer(conv_bn_net(), config);
  linquant::GraphModule model = quantizer.prepare({images.narrow(0, 0, batch)});
  model->train();

  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::unique_ptr<linquant::distributed::DataParallel> parallel;
  if (placement) {
    group = linquant::distributed::join(*placement, std::chrono::seconds(o.timeout_seconds));
    parallel = std::make_unique<linquant::distributed::DataParallel>(model, group);
    parallel->broadcast_state();
  }
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.02));
  std::vector<double> losses;
  for (int64_t step = 0; step < o.steps; ++step) {
    if (step == o.exit_at_step) std::_Exit(3);  // as a crashed worker would
    while (step == o.hang_at_step) pause();     // as a deadlocked one would
    const int64_t first = step * o.global_batch + rank * batch;
    quantizer.step();
    optimizer.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        model->forward(images.narrow(0, first, batch)), labels.narrow(0, first, batch));
    loss.backward();
    at::Tensor mean_loss = loss.detach().reshape({1}).clone();
    if (parallel) {
      parallel->average_gradients();
      std::vector<at::Tensor> tensors = {mean_loss};
      group->allreduce(tensors)->wait();
      mean_loss.div_(world);
    }
    optimizer.step();
    losses.push_back(mean_loss.item<double>());
    if (rank == 0)
      std::cout << "step " << step + 1 << "/" << o.steps << " loss " << losses.back() << "\n";
  }
  if (rank != 0) return 0;
  // Archive keys cannot hold dots: "0.weight" is written as "0__weight".
  const auto key = [](std::string name) {
    for (size_t at = name.find('.'); at != std::string::npos; at = name.find('.', at + 2)) {
      name.replace(at, 1, "__");
    }
    return name;
  };
  torch::serialize::OutputArchive archive;
  for (const auto& item : model->named_parameters()) archive.write(key(item.key()), item.value());
  for (const auto& item : model->named_buffers())
    archive.write(key(item.key()), item.value(), true);
  archive.write("losses", torch::tensor(losses, at::kDouble));
  const std::string partial = o.out + ".partial";
  archive.save_to(partial);
  if (std::rename(partial.c_str(), o.out.c_str()) != 0) {
    throw std::runtime_error("cannot write " + o.out + ": " + std::strerror(errno));
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "data_parallel_qat: error: " << e.what() << "\n";
    return 1;
  }
}
