// Module type name normalization for C++ and TorchScript class names.
#include <gtest/gtest.h>

#include "linquant/frontend/capture.h"

namespace linquant::frontend {
namespace {

TEST(NormalizeModuleType, CppFrontendClasses) {
  EXPECT_EQ(normalize_module_type("torch::nn::Conv2dImpl"), "Conv2d");
  EXPECT_EQ(normalize_module_type("torch::nn::BatchNorm2dImpl"), "BatchNorm2d");
  EXPECT_EQ(normalize_module_type("torch::nn::ReLU6Impl"), "ReLU6");
  EXPECT_EQ(normalize_module_type("my::ResidualBlockImpl"), "ResidualBlock");
  EXPECT_EQ(normalize_module_type("MyBlockImpl"), "MyBlock");
  EXPECT_EQ(normalize_module_type("Impl"), "Impl");
}

TEST(NormalizeModuleType, TorchScriptClasses) {
  EXPECT_EQ(normalize_module_type("__torch__.torch.nn.modules.conv.Conv2d"), "Conv2d");
  EXPECT_EQ(normalize_module_type("__torch__.torch.nn.modules.conv.___torch_mangle_352.Conv2d"),
            "Conv2d");
  EXPECT_EQ(normalize_module_type("__torch__.MyBlock"), "MyBlock");
  EXPECT_EQ(normalize_module_type("__torch__.___torch_mangle_7.MyBlock"), "MyBlock");
  EXPECT_EQ(normalize_module_type("__torch__.torchvision.models.resnet.BasicBlock"),
            "BasicBlock");
}

TEST(NormalizeModuleType, PythonAndShortNames) {
  EXPECT_EQ(normalize_module_type("torch.nn.modules.linear.Linear"), "Linear");
  EXPECT_EQ(normalize_module_type("Linear"), "Linear");
}

}  // namespace
}  // namespace linquant::frontend
