// QAT of a model written the usual LibTorch way: a residual CNN as C++ modules with
// hand-written forwards (no Sequential, no TorchScript, no Python anywhere), trained in float
// on Fashion-MNIST, quantized with LinearQuantizer (captured through LibTorch's tracer at
// prepare()), fine-tuned, finalized and exported as an iOS17 W8A8 Core ML package.
//
//   residual_cnn_qat [DATA_DIR] [OUTPUT.mlpackage] [TRAIN_IMAGES]
//
// TRAIN_IMAGES (default: all 60000) takes the first N training images, for a quick run.
#include <linquant/data/idx_dataset.h>
#include <linquant/linquant.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

namespace nn = torch::nn;

// conv-bn-relu, conv-bn, plus the input, relu: the basic block of a ResNet.
struct ResidualBlockImpl : nn::Module {
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  explicit ResidualBlockImpl(int64_t channels) {
    const auto options = nn::Conv2dOptions(channels, channels, 3).padding(1).bias(false);
    conv1 = register_module("conv1", nn::Conv2d(options));
    bn1 = register_module("bn1", nn::BatchNorm2d(channels));
    conv2 = register_module("conv2", nn::Conv2d(options));
    bn2 = register_module("bn2", nn::BatchNorm2d(channels));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor y = torch::relu(bn1(conv1(x)));
    return torch::relu(bn2(conv2(y)) + x);
  }
};
TORCH_MODULE(ResidualBlock);

struct ResidualCnnImpl : nn::Module {
  nn::Conv2d stem{nullptr}, down{nullptr};
  nn::BatchNorm2d stem_bn{nullptr}, down_bn{nullptr};
  ResidualBlock block1{nullptr}, block2{nullptr};
  nn::Linear classifier{nullptr};
  ResidualCnnImpl() {
    stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(16));
    block1 = register_module("block1", ResidualBlock(16));
    down = register_module(
        "down", nn::Conv2d(nn::Conv2dOptions(16, 32, 3).stride(2).padding(1).bias(false)));
    down_bn = register_module("down_bn", nn::BatchNorm2d(32));
    block2 = register_module("block2", ResidualBlock(32));
    classifier = register_module("classifier", nn::Linear(32, 10));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = block1(torch::relu(stem_bn(stem(x))));                 // 16 x 28 x 28
    y = torch::max_pool2d(y, 2);                                          // 16 x 14 x 14
    y = block2(torch::relu(down_bn(down(y))));                            // 32 x 7 x 7
    return classifier(torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1));  // 10 logits
  }
};
TORCH_MODULE(ResidualCnn);

linquant::ImageSplit load(const std::string& dir, const std::string& split, int64_t limit) {
  linquant::ImageSplit data = linquant::load_idx_split(dir, split);
  const int64_t n = std::min<int64_t>(limit, data.labels.size(0));
  data.images = (data.images.slice(0, 0, n) - 0.2860) / 0.3530;  // Fashion-MNIST mean / std
  data.labels = data.labels.slice(0, 0, n);
  return data;
}

// One epoch of shuffled minibatches through `model`; `before_step` runs before each batch.
template <typename Model, typename BeforeStep>
void train_epoch(Model& model, torch::optim::Optimizer& optimizer,
                 const linquant::ImageSplit& train, BeforeStep before_step) {
  const int64_t batch_size = 64, n = train.labels.size(0);
  const at::Tensor order = torch::randperm(n);
  for (int64_t start = 0; start < n; start += batch_size) {
    const at::Tensor index = order.slice(0, start, start + batch_size);
    before_step();
    optimizer.zero_grad();
    const at::Tensor loss = torch::cross_entropy_loss(
        model->forward(train.images.index_select(0, index)), train.labels.index_select(0, index));
    loss.backward();
    optimizer.step();
    if (start / batch_size % 200 == 0) {
      std::printf("  batch %lld/%lld  loss %.4f\n", static_cast<long long>(start / batch_size),
                  static_cast<long long>((n + batch_size - 1) / batch_size), loss.item<double>());
    }
  }
}

template <typename Model>
double accuracy(Model& model, const linquant::ImageSplit& test) {
  const torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (int64_t start = 0; start < test.labels.size(0); start += 500) {
    const at::Tensor output = model->forward(test.images.slice(0, start, start + 500));
    correct += output.argmax(1).eq(test.labels.slice(0, start, start + 500)).sum().item<int64_t>();
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(test.labels.size(0));
}

int main(int argc, char** argv) try {
  const std::string data_dir = argc > 1 ? argv[1] : linquant::kDefaultFashionMnistDir;
  const std::string package = argc > 2 ? argv[2] : "residual_cnn.mlpackage";
  const int64_t train_images = argc > 3 ? std::stoll(argv[3]) : 60000;
  torch::manual_seed(0);
  const linquant::ImageSplit train = load(data_dir, "train", train_images);
  const linquant::ImageSplit test = load(data_dir, "t10k", 10000);

  ResidualCnn net;
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
  std::printf("float training, %lld images\n", static_cast<long long>(train.labels.size(0)));
  net->train();
  train_epoch(net, optimizer, train, [] {});
  const double float_accuracy = accuracy(net, test);
  std::printf("float accuracy: %.2f%%\n", float_accuracy);

  // Observe from the first step, fake-quantize from the first, freeze BatchNorm statistics
  // and observers half way through the fine-tuning epoch.
  const int64_t steps = (train.labels.size(0) + 63) / 64;
  linquant::ModuleLinearQuantizerConfig global;
  global.set_milestones(linquant::Milestones{0, 0, steps / 2, steps / 2});
  linquant::LinearQuantizerConfig config;
  config.set_global(global);
  linquant::LinearQuantizer quantizer(net, config);
  linquant::GraphModule qmodel = quantizer.prepare({torch::zeros({1, 1, 28, 28})});
  torch::optim::Adam qoptimizer(qmodel->parameters(), torch::optim::AdamOptions(1e-4));
  std::printf("QAT fine-tuning\n");
  qmodel->train();
  train_epoch(qmodel, qoptimizer, train, [&] { quantizer.step(); });
  const double qat_accuracy = accuracy(qmodel, test);
  std::printf("QAT (fake quantized) accuracy: %.2f%%\n", qat_accuracy);

  linquant::GraphModule finalized = quantizer.finalize();
  std::printf("finalized accuracy: %.2f%%\n", accuracy(finalized, test));
  std::cout << quantizer.report() << "\n";
  linquant::coreml::SaveOptions options;
  options.target = linquant::coreml::Target::iOS17;
  options.overwrite = true;
  std::cout << "saved " << linquant::coreml::save(finalized, package, options) << "\n";
  return 0;
} catch (const linquant::Error& error) {
  std::cerr << "error: " << error.what() << "\n";
  return 2;
}
