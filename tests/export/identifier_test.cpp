// MIL identifier sanitizing and uniqueness.
#include "linquant/export/coreml/identifier.h"

#include <gtest/gtest.h>

namespace linquant::coreml {
namespace {

TEST(Identifier, Validity) {
  EXPECT_TRUE(is_valid_identifier("conv_0_weight"));
  EXPECT_TRUE(is_valid_identifier("_x@1"));
  EXPECT_FALSE(is_valid_identifier(""));
  EXPECT_FALSE(is_valid_identifier("0abc"));
  EXPECT_FALSE(is_valid_identifier("@a"));
  EXPECT_FALSE(is_valid_identifier("a.b"));
  EXPECT_FALSE(is_valid_identifier("a-b"));
}

TEST(Identifier, Sanitize) {
  EXPECT_EQ(sanitize_identifier("conv.0.weight"), "conv_0_weight");
  EXPECT_EQ(sanitize_identifier("input.1"), "input_1");
  EXPECT_EQ(sanitize_identifier("layer1/conv-2 x"), "layer1_conv_2_x");
  EXPECT_EQ(sanitize_identifier("1st"), "_1st");
  EXPECT_EQ(sanitize_identifier("@x"), "_@x");
  EXPECT_EQ(sanitize_identifier(""), "_");
  EXPECT_EQ(sanitize_identifier("caf\xc3\xa9"), "caf__");  // each UTF-8 byte becomes '_'
  EXPECT_EQ(sanitize_identifier("keep_me@2"), "keep_me@2");
  for (const char* name : {"a.b", "9", "", "x y", "\xff"}) {
    EXPECT_TRUE(is_valid_identifier(sanitize_identifier(name))) << name;
  }
}

TEST(Identifier, RegistryKeepsNamesUnique) {
  NameRegistry names;
  EXPECT_EQ(names.claim("conv.0"), "conv_0");
  EXPECT_EQ(names.claim("conv_0"), "conv_0_1");  // collides after sanitizing
  EXPECT_EQ(names.claim("conv.0"), "conv_0_2");
  EXPECT_EQ(names.claim("conv_0_1"), "conv_0_1_1");  // the suffixed name is taken too
  EXPECT_EQ(names.claim("relu"), "relu");
  EXPECT_TRUE(names.contains("conv_0_2"));
  EXPECT_FALSE(names.contains("conv.0"));
}

}  // namespace
}  // namespace linquant::coreml
