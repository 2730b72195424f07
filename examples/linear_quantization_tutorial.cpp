// coremltools' LinearQuantizer tutorial (docs/examples/optimize/torch/quantization/
// linear_quantization.py) written against linquant's C++ API, section for section: define the
// net and data, train without quantization, insert quantization with LinearQuantizer, fine-tune
// with quantizer.step() before each batch, finalize, export to Core ML for iOS17.
// Fashion-MNIST from Debian stands in for torchvision's MNIST download.
//
//   linear_quantization_tutorial [DATA_DIR] [OUTPUT.mlpackage]
//
// `linquant train` is the same flow with progress bars, metrics and a chart.
#include <linquant/data/idx_dataset.h>
#include <linquant/linquant.h>
#include <linquant/quantizer/linear_quantizer.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>

namespace nn = torch::nn;

// Network and dataset definition.
nn::Sequential mnist_net(int64_t num_classes = 10) {
  return nn::Sequential({{"conv", nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1))},
                         {"relu", nn::ReLU()},
                         {"pool", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2).padding(0))},
                         {"flatten", nn::Flatten()},
                         {"dense", nn::Linear(2352, num_classes)},
                         {"softmax", nn::LogSoftmax(1)}});
}

// The tutorial's transforms.Normalize((0.1307,), (0.3081,)).
linquant::ImageSplit mnist_dataset(const std::string& dir, const std::string& split) {
  linquant::ImageSplit data = linquant::load_idx_split(dir, split);
  data.images = (data.images - 0.1307) / 0.3081;
  return data;
}

void train_step(const std::function<at::Tensor(const at::Tensor&)>& model,
                torch::optim::Optimizer& optimizer, const at::Tensor& data,
                const at::Tensor& target, int64_t batch_idx, int64_t num_batches, int epoch) {
  optimizer.zero_grad();
  const at::Tensor output = model(data);
  const at::Tensor loss = torch::nll_loss(output, target);
  loss.backward();
  optimizer.step();
  if (batch_idx % 100 == 0) {
    std::printf("Train Epoch: %d [%lld/%lld (%.0f%%)]\tLoss: %.6f\n", epoch,
                static_cast<long long>(batch_idx), static_cast<long long>(num_batches),
                100.0 * batch_idx / num_batches, loss.item<double>());
  }
}

double eval_model(const std::function<at::Tensor(const at::Tensor&)>& model,
                  const linquant::ImageSplit& test, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  double test_loss = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < test.labels.size(0); start += batch_size) {
    const at::Tensor data = test.images.slice(0, start, start + batch_size);
    const at::Tensor target = test.labels.slice(0, start, start + batch_size);
    const at::Tensor output = model(data);
    test_loss += torch::nll_loss(output, target, {}, at::Reduction::Sum).item<double>();
    correct += output.argmax(1).eq(target).sum().item<int64_t>();
  }
  test_loss /= test.labels.size(0);
  const double accuracy = 100.0 * correct / test.labels.size(0);
  std::printf("\nTest set: Average loss: %.4f, Accuracy: %.1f%%\n\n", test_loss, accuracy);
  return accuracy;
}

// One epoch over the shuffled training set (DataLoader(shuffle=True)).
template <typename Step>
void for_each_batch(const linquant::ImageSplit& train, int64_t batch_size, Step step) {
  const at::Tensor order = torch::randperm(train.labels.size(0));
  const int64_t num_batches = (train.labels.size(0) + batch_size - 1) / batch_size;
  for (int64_t batch_idx = 0; batch_idx < num_batches; ++batch_idx) {
    const at::Tensor index = order.slice(0, batch_idx * batch_size, (batch_idx + 1) * batch_size);
    step(train.images.index_select(0, index), train.labels.index_select(0, index), batch_idx,
         num_batches);
  }
}

int main(int argc, char** argv) try {
  const std::string data_dir = argc > 1 ? argv[1] : linquant::kDefaultFashionMnistDir;
  const std::string package = argc > 2 ? argv[2] : "quantized_model.mlpackage";
  torch::set_num_threads(1);  // the net is too small to gain from more (README: results)
  torch::manual_seed(0);

  // Initialize the model and the dataset.
  nn::Sequential model = mnist_net();
  const int64_t batch_size = 128;
  const linquant::ImageSplit train_dataset = mnist_dataset(data_dir, "train");
  const linquant::ImageSplit test_dataset = mnist_dataset(data_dir, "t10k");
  auto float_model = [&](const at::Tensor& x) { return model->forward(x); };

  // Training the model without quantization.
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-07));
  double accuracy_unquantized = 0.0;
  int num_epochs = 4;
  for (int epoch = 0; epoch < num_epochs; ++epoch) {
    model->train();
    for_each_batch(train_dataset, batch_size,
                   [&](const at::Tensor& data, const at::Tensor& target, int64_t idx, int64_t n) {
                     train_step(float_model, optimizer, data, target, idx, n, epoch);
                   });
    model->eval();
    accuracy_unquantized = eval_model(float_model, test_dataset, batch_size);
  }
  std::printf("Accuracy of unquantized network: %.1f%%\n\n", accuracy_unquantized);

  // Insert quantization layers: milestones [0, 1, 2, 1] as in the tutorial (in steps, since
  // step() runs before every batch).
  linquant::ModuleLinearQuantizerConfig global_config;
  global_config.set_milestones(linquant::Milestones{0, 1, 2, 1});
  linquant::LinearQuantizerConfig config;
  config.set_global(global_config);
  linquant::LinearQuantizer quantizer(model, config);
  linquant::GraphModule qmodel = quantizer.prepare({torch::randn({1, 1, 28, 28})});
  auto quantized_model_fn = [&](const at::Tensor& x) { return qmodel->forward(x); };

  // Fine-tuning the model, with quantizer.step() before every batch.
  torch::optim::Adam qoptimizer(qmodel->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-07));
  double accuracy_quantized = 0.0;
  for (int epoch = 0; epoch < num_epochs; ++epoch) {
    qmodel->train();
    for_each_batch(train_dataset, batch_size,
                   [&](const at::Tensor& data, const at::Tensor& target, int64_t idx, int64_t n) {
                     quantizer.step();
                     train_step(quantized_model_fn, qoptimizer, data, target, idx, n, epoch);
                   });
    qmodel->eval();
    accuracy_quantized = eval_model(quantized_model_fn, test_dataset, batch_size);
  }
  std::printf("Accuracy of quantized network: %.1f%%\n", accuracy_quantized);
  std::printf("Accuracy of unquantized network: %.1f%%\n\n", accuracy_unquantized);
  if (std::abs(accuracy_quantized - accuracy_unquantized) >
      2) {  // the tutorial's assert_allclose(atol=2)
    std::cerr << "quantized accuracy is more than 2 points from the unquantized one\n";
    return 1;
  }

  // Finalizing the model for export, and the per-quantizer report.
  qmodel->eval();
  linquant::GraphModule quantized_model = quantizer.finalize();
  std::cout << quantizer.report() << "\n";

  // Exporting the model for on-device execution (activation quantization needs iOS17).
  linquant::coreml::SaveOptions options;
  options.target = linquant::coreml::Target::iOS17;
  options.overwrite = true;
  std::cout << "saved " << linquant::coreml::save(quantized_model, package, options) << "\n";
  return 0;
} catch (const linquant::Error& error) {
  std::cerr << "error: " << error.what() << "\n";
  return 2;
}
