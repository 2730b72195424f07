// linquant::onnx::save and model_bytes: the structure of what they write (read back with
// summarize_model), and the refusals: unfinalized graphs, opsets out of range, 4-bit weights
// below opset 21, opaque submodules, bad names, existing files. Every failure names the
// problem and leaves the directory as it was. The numbers ONNX Runtime computes from these
// models are checked in tests/export/python/test_onnx_models.py.
#include <filesystem>
#include <set>

#include "linquant/common/file_io.h"
#include "linquant/export/onnx/model_summary.h"
#include "linquant/export/onnx/save.h"
#include "test_graphs.h"

namespace linquant::onnx {
namespace {

namespace fs = std::filesystem;
using coreml::testing::finalized;
using coreml::testing::four_bit_config;
using coreml::testing::tutorial_net;

using OnnxSaveTest = coreml::testing::ExportDirTest;

TEST_F(OnnxSaveTest, TutorialNetIsQdqWithOneDequantizePerConsumer) {
  const GraphModule model = finalized(tutorial_net(), {1, 1, 28, 28});
  const ModelSummary s = summarize_model(model_bytes(model->graph()));
  EXPECT_EQ(s.opset, 13);
  EXPECT_EQ(s.ir_version, 7);
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{1, 1, 28, 28}));
  EXPECT_EQ(s.outputs[0].shape, (std::vector<int64_t>{1, 10}));
  // Quantizers: input, conv-relu, log_softmax (3), plus the requantizations after the max
  // pool and the flatten with the relu's parameters (2).
  EXPECT_EQ(s.op_counts.at("QuantizeLinear"), 5);
  // One dequantization per consumer of each, the output's, two weights and two int32 biases.
  EXPECT_EQ(s.op_counts.at("DequantizeLinear"), 9);
  EXPECT_EQ(s.op_counts.at("Conv"), 1);
  EXPECT_EQ(s.op_counts.at("Gemm"), 1);
  // Weights and their per-channel zero points (12 conv, 10 linear channels).
  EXPECT_EQ(s.initializer_bytes.at("int8"), 12 * 9 + 2352 * 10 + 12 + 10);
  EXPECT_EQ(s.initializer_bytes.at("int32"), 4 * (12 + 10) * 2);  // biases and zero points
  EXPECT_EQ(s.metadata.at("linquant.opset"), "13");
}

TEST_F(OnnxSaveTest, FloatBiasOptionKeepsFloatBiases) {
  const GraphModule model = finalized(tutorial_net(), {1, 1, 28, 28});
  SaveOptions options;
  options.integer_bias = false;
  const ModelSummary s = summarize_model(model_bytes(model->graph(), options));
  EXPECT_EQ(s.initializer_bytes.count("int32"), 0u);
  EXPECT_EQ(s.op_counts.at("DequantizeLinear"), 7);
}

TEST_F(OnnxSaveTest, FloatGraphHasNoQuantizers) {
  const ir::Graph graph = frontend::capture(tutorial_net());
  SaveOptions options;
  options.input_shapes = {{4, 1, 28, 28}};
  const ModelSummary s = summarize_model(model_bytes(graph, options));
  EXPECT_EQ(s.op_counts.count("QuantizeLinear"), 0u);
  EXPECT_EQ(s.op_counts.count("DequantizeLinear"), 0u);
  EXPECT_EQ(s.inputs[0].shape[0], 4);
  EXPECT_EQ(s.initializer_bytes.at("float"), 4 * (12 * 9 + 12 + 2352 * 10 + 10));
}

TEST_F(OnnxSaveTest, FourBitWeightsNeedOpset21) {
  const GraphModule model = finalized(tutorial_net(), {1, 1, 28, 28}, four_bit_config());
  EXPECT_EQ(minimum_opset(model->graph()), 21);
  const std::string message = failure([&] { save(model, (dir_ / "w4").string()); });
  EXPECT_NE(message.find("quantized to 4 bits"), std::string::npos) << message;
  EXPECT_NE(message.find("opset = 21"), std::string::npos) << message;
  SaveOptions options;
  options.opset = 21;
  const ModelSummary s = summarize_model(model_bytes(model->graph(), options));
  EXPECT_EQ(s.ir_version, 10);
  // Two 4-bit values per byte, weights and zero points.
  EXPECT_EQ(s.initializer_bytes.at("int4"),
            (12 * 9 + 1) / 2 + 2352 * 10 / 2 + (12 + 1) / 2 + 10 / 2);
}

TEST_F(OnnxSaveTest, RefusesPreparedGraphsAndOpsetsOutOfRange) {
  LinearQuantizer quantizer(tutorial_net());
  const GraphModule prepared = quantizer.prepare({at::randn({1, 1, 28, 28})});
  std::string message = failure([&] { save(prepared, (dir_ / "prepared").string()); });
  EXPECT_NE(message.find("prepared but not finalized"), std::string::npos) << message;
  const GraphModule model = finalized(tutorial_net(), {1, 1, 28, 28});
  for (int64_t opset : {12, 22}) {
    SaveOptions options;
    options.opset = opset;
    message = failure([&] { save(model, (dir_ / "m").string(), options); });
    EXPECT_NE(message.find("opset " + std::to_string(opset) + " is not supported"),
              std::string::npos)
        << message;
  }
}

TEST_F(OnnxSaveTest, NamesAndExistingFiles) {
  const GraphModule model = finalized(tutorial_net(), {1, 1, 28, 28});
  SaveOptions options;
  options.input_names = {"image"};
  options.output_names = {"log_probabilities"};
  const std::string path = save(model, (dir_ / "named").string(), options);
  EXPECT_EQ(path, (dir_ / "named.onnx").string());
  const ModelSummary s = summarize_model(read_file_bytes(path));
  EXPECT_EQ(s.inputs[0].name, "image");
  EXPECT_EQ(s.outputs[0].name, "log_probabilities");

  const std::string before = read_file_bytes(path);
  std::string message = failure([&] { save(model, path); });
  EXPECT_NE(message.find("already exists"), std::string::npos) << message;
  options.overwrite = true;
  options.output_names = {"scores"};
  save(model, path, options);
  EXPECT_NE(read_file_bytes(path), before);
  EXPECT_EQ(listing(), (std::set<std::string>{"named.onnx"}));

  options.output_names = {"a", "b"};
  message = failure([&] { save(model, (dir_ / "two").string(), options); });
  EXPECT_NE(message.find("output_names has 2 names for 1 graph outputs"), std::string::npos)
      << message;
  message = failure([&] { save(model, (dir_ / "missing" / "m").string()); });
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

TEST(OnnxSummaryTest, RefusesWhatIsNotAModel) {
  EXPECT_THROW(summarize_model("not a model at all"), ExportError);
  EXPECT_THROW(summarize_model(""), ExportError);
}

}  // namespace
}  // namespace linquant::onnx
