// Every IR op kind has a Core ML lowering or a stated reason why it has none, so a new op
// cannot reach the exporter unnoticed. Torch operators run as generic ops are looked up by
// schema; spot-check the ones the coverage sweep's models need.
#include <gtest/gtest.h>

#include "linquant/ir/op.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

TEST(CoreMLOpTable, EveryOpIsLoweredOrExplicitlyUnlowered) {
  for (ir::Op op : ir::all_ops()) {
    const bool lowered = find_lowering(op) != nullptr;
    const bool explained = unlowered_reason(op) != nullptr;
    EXPECT_NE(lowered, explained) << ir::to_string(op)
                                  << (lowered ? " has a lowering and a reason not to have one"
                                              : " has neither a lowering nor a reason");
  }
}

TEST(CoreMLOpTable, GenericOperatorsFoundByOverloadOrName) {
  for (const char* schema :
       {"aten::squeeze.dim", "aten::squeeze", "aten::permute", "aten::lstm.input",
        "aten::index.Tensor", "aten::roll", "aten::layer_norm", "aten::softmax.int"}) {
    EXPECT_NE(find_torch_op_lowering(schema), nullptr) << schema;
  }
  EXPECT_EQ(find_torch_op_lowering("aten::nonzero"), nullptr);
}

}  // namespace
}  // namespace linquant::coreml::lowering
