// save(): the files it writes, and the hostile cases: unwritable destinations, unsupported
// ops, 4-bit weights for iOS17, unfinalized graphs, bad options. Every failure must name the
// problem and leave the destination directory exactly as it was.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "linquant/export/coreml/export_error.h"
#include "test_graphs.h"

namespace linquant::coreml::testing {
namespace {

namespace fs = std::filesystem;

using SaveTest = ExportDirTest;

TEST_F(SaveTest, WritesAPackageAndReturnsItsPath) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  const std::string path = save(model, (dir_ / "cbr").string());
  EXPECT_EQ(path, (dir_ / "cbr.mlpackage").string());
  EXPECT_TRUE(fs::is_regular_file(dir_ / "cbr.mlpackage" / "Manifest.json"));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "cbr.mlpackage/Data/com.apple.CoreML/model.mlmodel"));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "cbr.mlpackage/Data/com.apple.CoreML/weights/weight.bin"));
  // The package, Manifest.json, Data, com.apple.CoreML, model.mlmodel, weights, weight.bin.
  EXPECT_EQ(listing().size(), 7u);
}

TEST_F(SaveTest, ExistingPackageIsReplacedOnlyWithOverwrite) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  const fs::path model_file = dir_ / "cbr.mlpackage/Data/com.apple.CoreML/model.mlmodel";
  save(model, (dir_ / "cbr").string());
  std::ofstream(model_file, std::ios::trunc) << "marker";
  const std::string message = failure([&] { save(model, (dir_ / "cbr").string()); });
  EXPECT_NE(message.find("already exists"), std::string::npos) << message;
  EXPECT_NE(message.find("overwrite"), std::string::npos) << message;
  EXPECT_EQ(fs::file_size(model_file), 6u);  // untouched

  SaveOptions options;
  options.overwrite = true;
  save(model, (dir_ / "cbr.mlpackage").string(), options);
  EXPECT_GT(fs::file_size(model_file), 6u);
  EXPECT_EQ(listing().size(), 7u);  // no temporary or backup directory left
}

TEST_F(SaveTest, MissingParentOrFileParentFails) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  std::string message = failure([&] { save(model, (dir_ / "no" / "such" / "m").string()); });
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  std::ofstream(dir_ / "file") << "x";
  message = failure([&] { save(model, (dir_ / "file" / "m").string()); });
  EXPECT_NE(message.find("file"), std::string::npos) << message;
}

// Root ignores permissions, so the child drops to nobody first (as the writer's own tests do).
TEST_F(SaveTest, ReadOnlyDirectoryFailsAndLeavesNothing) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  const fs::path parent = dir_ / "ro";
  fs::create_directories(parent);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(parent.c_str(), 0555), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::_Exit(4);
    try {
      save(model, (parent / "m").string());
    } catch (const ExportError& e) {
      const std::string message = e.what();
      std::_Exit(message.find("not writable") != std::string::npos ? 0 : 3);
    } catch (...) {
      std::_Exit(2);
    }
    std::_Exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: wrong type, 3: wrong message, 4: setuid";
  EXPECT_TRUE(fs::is_empty(parent));
}

TEST_F(SaveTest, FourBitWeightsForIos17NameIos18) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8}, four_bit_config());
  const std::string message = failure([&] { save(model, (dir_ / "w4").string()); });
  EXPECT_NE(message.find("iOS18"), std::string::npos) << message;
  EXPECT_NE(message.find("node '0'"), std::string::npos) << message;
  EXPECT_NE(message.find("4 bits"), std::string::npos) << message;
}

TEST_F(SaveTest, OpaqueFloatModuleIsRejectedByName) {
  HandGraph g;
  const auto x = g.input({1, 4});
  auto h = g.node(ir::Op::relu, {x}, {1, 4});
  h = g.node(ir::Op::float_module, {h}, {1, 4}, attrs({{"module", std::string("encoder.attn")}}),
             "encoder.attn");
  const ir::Graph graph = g.finish({h});
  const std::string message = failure([&] { save(graph, (dir_ / "m").string()); });
  EXPECT_NE(message.find("node 'encoder.attn' (float_module)"), std::string::npos) << message;
  EXPECT_NE(message.find("non_traceable_module_names"), std::string::npos) << message;
}

TEST_F(SaveTest, UnsupportedAttributeFailsWithTheNode) {
  HandGraph g;
  const auto x = g.input({1, 2, 8, 8});
  const auto h = g.node(ir::Op::max_pool, {x}, {1, 2, 3, 3},
                        attrs({{"kernel_size", std::vector<int64_t>{2, 2}},
                               {"stride", std::vector<int64_t>{2, 2}},
                               {"padding", std::vector<int64_t>{0, 0}},
                               {"dilation", std::vector<int64_t>{2, 2}},
                               {"ceil_mode", false}}),
                        "pool");
  const ir::Graph graph = g.finish({h});
  const std::string message = failure([&] { save(graph, (dir_ / "m").string()); });
  EXPECT_NE(message.find("node 'pool' (max_pool)"), std::string::npos) << message;
  EXPECT_NE(message.find("dilated"), std::string::npos) << message;
}

TEST_F(SaveTest, PreparedButNotFinalizedGraphIsRejected) {
  at::manual_seed(0);
  LinearQuantizer quantizer(conv_bn_relu());
  const GraphModule prepared = quantizer.prepare({at::randn({1, 3, 8, 8})}, /*inplace=*/false);
  const std::string message = failure([&] { save(prepared, (dir_ / "m").string()); });
  EXPECT_NE(message.find("finalize()"), std::string::npos) << message;
}

TEST_F(SaveTest, QuantizedActivationsNeedIos17) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  SaveOptions options;
  options.target = Target::iOS16;
  const std::string message = failure([&] { save(model, (dir_ / "m").string(), options); });
  EXPECT_NE(message.find("iOS17"), std::string::npos) << message;
}

TEST_F(SaveTest, FloatGraphShapesComeFromOptionsOrFail) {
  const ir::Graph graph = frontend::capture(tutorial_net());
  std::string message = failure([&] { save(graph, (dir_ / "m").string()); });
  EXPECT_NE(message.find("input_shapes"), std::string::npos) << message;

  SaveOptions options;
  options.input_shapes = {{3, 1, 28, 28}};
  options.precision = ComputePrecision::Float32;
  save(graph, (dir_ / "m").string(), options);
  EXPECT_TRUE(fs::is_directory(dir_ / "m.mlpackage"));
  // The caller's graph is not modified by recording shapes on its copy.
  EXPECT_TRUE(graph.value(graph.inputs()[0]).shape.empty());

  options.input_shapes = {{3, 1, 28}};
  options.overwrite = true;
  message = failure([&] { save(graph, (dir_ / "m").string(), options); });
  EXPECT_NE(message.find("record shapes"), std::string::npos) << message;
}

TEST_F(SaveTest, BadNamesAreRejected) {
  const GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  SaveOptions options;
  options.input_names = {"a", "b"};
  std::string message = failure([&] { save(model, (dir_ / "m").string(), options); });
  EXPECT_NE(message.find("input_names"), std::string::npos) << message;
  options.input_names = {"in put"};
  message = failure([&] { save(model, (dir_ / "m").string(), options); });
  EXPECT_NE(message.find("identifier"), std::string::npos) << message;
  options.input_names = {"same"};
  options.output_names = {"same"};
  message = failure([&] { save(model, (dir_ / "m").string(), options); });
  EXPECT_NE(message.find("twice"), std::string::npos) << message;
}

TEST_F(SaveTest, WeightsOffTheirGridAreRejected) {
  GraphModule model = finalized(conv_bn_relu(), {1, 3, 8, 8});
  ir::Graph graph = model->graph();
  const ir::Node& conv = graph.nodes()[*graph.find_node("0")];
  const std::string weight = conv.attrs.s("weight");
  graph.add_tensor(weight, graph.tensor(weight).tensor + 1e-3, true);
  const std::string message = failure([&] { save(graph, (dir_ / "m").string()); });
  EXPECT_NE(message.find("not on its quantization grid"), std::string::npos) << message;
}

}  // namespace
}  // namespace linquant::coreml::testing
