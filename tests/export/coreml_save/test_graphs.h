// Graphs for the save() tests: quantized and float Sequential models through the real
// LinearQuantizer flow, small hand-built graphs with recorded shapes, and readers of the
// MIL program save() builds.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "Model.pb.h"
#include "linquant/export/coreml/model_spec.h"
#include "linquant/export/coreml/save.h"
#include "linquant/export/export_error.h"
#include "linquant/frontend/capture.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant::coreml::testing {

namespace nn = torch::nn;
namespace milspec = ::CoreML::Specification::MILSpec;

inline nn::Sequential conv_bn_relu() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)), nn::BatchNorm2d(8),
                        nn::ReLU());
}

inline nn::Sequential tutorial_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                        nn::Linear(2352, 10), nn::LogSoftmax(1));
}

// prepare (default or the given config), a few calibration forwards, finalize.
inline GraphModule finalized(nn::Sequential model, const std::vector<int64_t>& shape,
                             LinearQuantizerConfig config = {}) {
  at::manual_seed(0);
  LinearQuantizer quantizer(model, std::move(config));
  GraphModule prepared = quantizer.prepare({at::randn(shape)}, /*inplace=*/false);
  std::vector<int64_t> batch = shape;
  batch[0] = 2;
  const at::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) prepared->forward(at::randn(batch));
  return quantizer.finalize();
}

inline LinearQuantizerConfig four_bit_config() {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig().set_weight_dtype(WeightDtype::qint4));
  return config;
}

// Hand-built graphs with shapes set directly (as record_shapes would).
class HandGraph {
 public:
  ir::ValueId input(const std::vector<int64_t>& shape, const std::string& name = "x") {
    const ir::ValueId id = graph_.add_input(name);
    graph_.value(id).shape = shape;
    return id;
  }
  ir::ValueId node(ir::Op op, std::vector<ir::ValueId> inputs, const std::vector<int64_t>& shape,
                   ir::Attributes attrs = {}, const std::string& name = "") {
    ir::Node n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    const size_t index = graph_.add_node(n);
    const ir::ValueId out = graph_.nodes()[index].outputs[0];
    graph_.value(out).shape = shape;
    return out;
  }
  ir::ValueId qdq(ir::ValueId x, double scale, int64_t zero_point, int64_t qmin = 0,
                  int64_t qmax = 255, const std::string& name = "") {
    ir::Attributes a;
    a.set("scale", static_cast<double>(static_cast<float>(scale)));
    a.set("zero_point", zero_point);
    a.set("quant_min", qmin);
    a.set("quant_max", qmax);
    // A copy: adding the node may move the value table that graph_.value(x) lives in.
    const std::vector<int64_t> shape = graph_.value(x).shape;
    return node(ir::Op::quantize_dequantize, {x}, shape, a, name);
  }
  void add_tensor(const std::string& name, at::Tensor t) { graph_.add_tensor(name, t, true); }
  ir::Graph finish(std::vector<ir::ValueId> outputs) {
    graph_.set_outputs(std::move(outputs));
    return graph_;
  }

 private:
  ir::Graph graph_;
};

inline ir::Attributes attrs(
    std::initializer_list<std::pair<std::string, ir::AttributeValue>> list) {
  ir::Attributes a;
  for (const auto& [key, value] : list) a.set(key, value);
  return a;
}

// The parsed model of a built program.
inline ::CoreML::Specification::Model parsed(const ProgramBuilder& program) {
  ::CoreML::Specification::Model model;
  EXPECT_TRUE(model.ParseFromString(build_package_contents(program).model));
  return model;
}

inline const milspec::Block& main_block(const ::CoreML::Specification::Model& model) {
  const milspec::Function& main = model.mlprogram().functions().at("main");
  return main.block_specializations().at(main.opset());
}

// Op types without the consts, in program order.
inline std::vector<std::string> op_sequence(const ProgramBuilder& program) {
  std::vector<std::string> ops;
  for (const std::string& type : program.op_types()) {
    if (type != "const") ops.push_back(type);
  }
  return ops;
}

inline std::vector<const milspec::Operation*> ops_of_type(const milspec::Block& block,
                                                          const std::string& type) {
  std::vector<const milspec::Operation*> found;
  for (const auto& op : block.operations()) {
    if (op.type() == type) found.push_back(&op);
  }
  return found;
}

// The const op bound to parameter `param` of `op` (by name).
inline const milspec::Value& bound_const(const milspec::Block& block, const milspec::Operation& op,
                                         const std::string& param) {
  const std::string& name = op.inputs().at(param).arguments(0).name();
  for (const auto& candidate : block.operations()) {
    if (candidate.type() == "const" && candidate.outputs(0).name() == name) {
      return candidate.attributes().at("val");
    }
  }
  ADD_FAILURE() << "no const named " << name;
  static const milspec::Value none;
  return none;
}

inline milspec::DataType output_dtype(const milspec::Operation& op) {
  return op.outputs(0).type().tensortype().datatype();
}

// A fresh directory per test; failure(f) runs an export that must throw ExportError and
// leave the directory exactly as it was, and returns the message.
class ExportDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("linquant_export_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0755);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) {
      names.insert(std::filesystem::relative(entry.path(), dir_).string());
    }
    return names;
  }
  // Runs save and returns the error message; fails the test if it does not throw, or if the
  // directory changed.
  template <typename F>
  std::string failure(F&& f) {
    const std::set<std::string> before = listing();
    std::string message;
    try {
      f();
      ADD_FAILURE() << "save did not throw";
    } catch (const ExportError& e) {
      message = e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not an ExportError: " << e.what();
    }
    EXPECT_EQ(listing(), before) << "a failed save left something behind";
    return message;
  }

  std::filesystem::path dir_;
};

}  // namespace linquant::coreml::testing
