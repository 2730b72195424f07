// Data-parallel pieces on a real c10d job: two ranks, each on its own thread with its own Gloo
// process group on 127.0.0.1, against one process fed the whole batch.
// - Observer sync is exact: two ranks fed the two halves of a batch end every step with the
//   observer state (min/max, scale, zero point) of one observer fed the whole batch, bit for
//   bit, for every observer kind, per tensor and per channel, NaN and infinities included.
// - DataParallel: parameters broadcast from rank 0; over SGD steps, parameters, averaged
//   gradients, observers, quantizer parameters and (synchronized) BatchNorm statistics equal
//   one process's on the whole batch within 1e-5 relative (only summation order and
//   per-batch kernel blocking differ).
#include "linquant/distributed/data_parallel.h"

#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "close_to.h"
#include "linquant/distributed/launch.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant::distributed {
namespace {

constexpr int kWorld = 2;

// A port nothing listens on right now (the kernel's pick for port 0).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("no free port");
  }
  close(fd);
  return ntohs(address.sin_port);
}

// body(rank, group) on kWorld threads joined to one job; rethrows the first failure.
using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

void run_ranks(const std::function<void(int, const Group&)>& body) {
  const int port = free_port();
  std::vector<std::exception_ptr> errors(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      try {
        WorkerPlacement placement;
        placement.rank = r;
        placement.world_size = kWorld;
        placement.master_port = port;
        const auto group = join(placement, std::chrono::seconds(60));
        body(r, group);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

struct ObserverCase {
  const char* name;
  ObserverType observer;
  QuantizationScheme scheme;
  int64_t ch_axis;
};

// Batches of [4, 3, 5, 5] with NaN, infinities, and a half with no finite value at all.
std::vector<at::Tensor> batches() {
  std::vector<at::Tensor> out;
  for (int step = 0; step < 4; ++step) {
    at::manual_seed(step);
    at::Tensor x = at::randn({4, 3, 5, 5}) * (step + 1);
    x[0][0][0][0] = NAN;
    x[3][1][2][2] = INFINITY;
    x[1][2][0][1] = -INFINITY;
    if (step == 2) x.narrow(0, 2, 2).fill_(NAN);
    if (step == 3) x[2][1][1][1] = -40.0f;  // the batch minimum sits in rank 1's half
    out.push_back(x);
  }
  return out;
}

class ObserverSync : public ::testing::TestWithParam<ObserverCase> {};

TEST_P(ObserverSync, TwoHalvesGiveTheStateOfTheWholeBatch) {
  FakeQuantizeOptions options;
  options.observer = GetParam().observer;
  options.scheme = GetParam().scheme;
  options.ch_axis = GetParam().ch_axis;
  const std::vector<at::Tensor> data = batches();
  // One observer fed every whole batch: the state after each step.
  FakeQuantize whole(options);
  std::vector<std::vector<at::Tensor>> expected;
  std::vector<at::Tensor> expected_outputs;
  for (const at::Tensor& x : data) {
    expected_outputs.push_back(whole->forward(x));
    expected.push_back({whole->activation_post_process->min_val.clone(),
                        whole->activation_post_process->max_val.clone(), whole->scale.clone(),
                        whole->zero_point.clone()});
  }
  run_ranks([&](int rank, const Group& group) {
    FakeQuantize half(options);
    FakeQuantizeImpl* q = half.get();
    half->set_range_reducer([&group, q](ObservedRange& range) {
      const bool per_channel = q->options().per_channel();
      all_reduce_range(range, per_channel ? 3 : 1, per_channel, *group);
    });
    for (size_t step = 0; step < data.size(); ++step) {
      const at::Tensor y = half->forward(data[step].narrow(0, 2 * rank, 2));
      const std::vector<at::Tensor> state = {half->activation_post_process->min_val,
                                             half->activation_post_process->max_val, half->scale,
                                             half->zero_point};
      const char* names[] = {"min_val", "max_val", "scale", "zero_point"};
      for (size_t k = 0; k < state.size(); ++k) {
        EXPECT_TRUE(at::equal(state[k], expected[step][k]))
            << names[k] << " rank " << rank << " step " << step << ": " << state[k] << " vs "
            << expected[step][k];
      }
      const at::Tensor want = expected_outputs[step].narrow(0, 2 * rank, 2);
      EXPECT_TRUE(at::allclose(y, want, 0.0, 0.0, /*equal_nan=*/true))
          << "output, rank " << rank << " step " << step;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(
    EveryObserver, ObserverSync,
    ::testing::Values(
        ObserverCase{"moving_average_affine", ObserverType::moving_average_min_max,
                     QuantizationScheme::affine, -1},
        ObserverCase{"min_max_symmetric", ObserverType::min_max, QuantizationScheme::symmetric, -1},
        ObserverCase{"ema_affine", ObserverType::ema_min_max, QuantizationScheme::affine, -1},
        ObserverCase{"moving_average_per_channel", ObserverType::moving_average_min_max,
                     QuantizationScheme::affine, 1},
        ObserverCase{"min_max_per_channel", ObserverType::min_max, QuantizationScheme::symmetric,
                     1}),
    [](const ::testing::TestParamInfo<ObserverCase>& info) { return info.param.name; });

torch::nn::Sequential small_net() {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)),
                               torch::nn::ReLU(), torch::nn::Flatten(),
                               torch::nn::Linear(4 * 6 * 6, 3));
}

// With BatchNorm, which prepare() fuses into a QAT Conv-BN.
torch::nn::Sequential conv_bn_net() {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)),
                               torch::nn::BatchNorm2d(4), torch::nn::ReLU(), torch::nn::Flatten(),
                               torch::nn::Linear(4 * 6 * 6, 3));
}

// Model state worth comparing between the one-process run and the ranks.
std::vector<std::pair<std::string, at::Tensor>> state_of(const GraphModule& model) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& item : model->named_parameters()) {
    state.emplace_back(item.key(), item.value().detach().clone());
    state.emplace_back(item.key() + ".grad", item.value().grad().clone());
  }
  for (const auto& item : model->named_buffers()) {
    state.emplace_back(item.key(), item.value().detach().clone());
  }
  return state;
}

// `steps` SGD steps of one process on the whole batch of 4 (rank 0's initial weights) against
// two ranks on halves of it (rank 1 starting from other weights): after every step the
// parameters, gradients and buffers (observers, quantizer parameters, BatchNorm statistics)
// agree within 1e-5.
void expect_ranks_match_one_process(const std::function<torch::nn::Sequential()>& make_net,
                                    int steps) {
  at::manual_seed(42);
  const at::Tensor x = at::randn({4, 1, 8, 8});
  const at::Tensor target = at::randn({4, 3});
  const auto train_step = [](GraphModule& model, torch::optim::SGD& optimizer,
                             const at::Tensor& input, const at::Tensor& want,
                             DataParallel* parallel) {
    optimizer.zero_grad();
    torch::nn::functional::mse_loss(model->forward(input), want).backward();
    if (parallel) parallel->average_gradients();
    optimizer.step();
  };
  at::manual_seed(100);
  LinearQuantizer reference_quantizer(make_net());
  GraphModule reference = reference_quantizer.prepare({x});
  reference->train();
  torch::optim::SGD reference_optimizer(reference->parameters(), 0.1);
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> expected;
  for (int step = 0; step < steps; ++step) {
    train_step(reference, reference_optimizer, x, target, nullptr);
    expected.push_back(state_of(reference));
  }

  std::mutex creation;
  run_ranks([&](int rank, const Group& group) {
    std::unique_ptr<LinearQuantizer> quantizer;
    GraphModule model{nullptr};
    {
      // Different initial weights on each rank: the broadcast must replace rank 1's. The seed
      // is global, so the ranks take turns.
      const std::lock_guard<std::mutex> lock(creation);
      at::manual_seed(100 + static_cast<uint64_t>(rank));
      quantizer = std::make_unique<LinearQuantizer>(make_net());
      model = quantizer->prepare({x});
    }
    model->train();
    DataParallel parallel(model, group);
    EXPECT_EQ(parallel.rank(), rank);
    EXPECT_EQ(parallel.world_size(), kWorld);
    parallel.broadcast_state();
    torch::optim::SGD optimizer(model->parameters(), 0.1);
    for (int step = 0; step < steps; ++step) {
      train_step(model, optimizer, x.narrow(0, 2 * rank, 2), target.narrow(0, 2 * rank, 2),
                 &parallel);
      const auto state = state_of(model);
      ASSERT_EQ(state.size(), expected[static_cast<size_t>(step)].size());
      for (size_t k = 0; k < state.size(); ++k) {
        const auto& [name, want] = expected[static_cast<size_t>(step)][k];
        ASSERT_EQ(state[k].first, name);
        EXPECT_TRUE(close_to(state[k].second, want))
            << name << ", rank " << rank << " step " << step << ": " << state[k].second << " vs "
            << want;
      }
    }
  });
}

TEST(DataParallel, MatchesOneProcessOnTheWholeBatch) {
  expect_ranks_match_one_process(small_net, 3);
}

TEST(DataParallel, SynchronizedBatchNormMatchesOneProcessOnTheWholeBatch) {
  expect_ranks_match_one_process(conv_bn_net, 3);
}

TEST(DataParallel, ParametersThatLearnNothingGetNoGradient) {
  // Learnable symmetric quantizers: the zero point is a parameter that does not learn.
  LinearQuantizerConfig config;
  ModuleLinearQuantizerConfig global;
  global.set_algorithm(Algorithm::learnable);
  config.set_global(global);
  const at::Tensor x = at::randn({2, 1, 8, 8});
  run_ranks([&](int rank, const Group& group) {
    LinearQuantizer quantizer(small_net(), config);
    GraphModule model = quantizer.prepare({x});
    model->train();
    DataParallel parallel(model, group);
    model->forward(x).sum().backward();
    parallel.average_gradients();
    int frozen = 0;
    for (const auto& item : model->named_parameters()) {
      if (item.value().requires_grad()) {
        EXPECT_TRUE(item.value().grad().defined()) << item.key() << " rank " << rank;
      } else {
        EXPECT_FALSE(item.value().grad().defined()) << item.key() << " rank " << rank;
        ++frozen;
      }
    }
    EXPECT_GT(frozen, 0);
  });
}

}  // namespace
}  // namespace linquant::distributed
