// Manifest.json format and identifiers.
#include "linquant/export/coreml/manifest.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "linquant/export/coreml/export_error.h"

namespace linquant::coreml {
namespace {

TEST(Manifest, UuidsAreRandomVersion4LowerCase) {
  const std::regex pattern("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = random_uuid_v4();
    EXPECT_TRUE(std::regex_match(id, pattern)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(Manifest, ExactTextForKnownIdentifiers) {
  Manifest m = Manifest::for_ml_program();
  m.items[0].identifier = "aaaaaaaa-0000-4000-8000-000000000001";
  m.items[1].identifier = "bbbbbbbb-0000-4000-8000-000000000002";
  m.root_model_identifier = m.items[1].identifier;
  const std::string expected = R"({
    "fileFormatVersion": "1.0.0",
    "itemInfoEntries": {
        "aaaaaaaa-0000-4000-8000-000000000001": {
            "author": "com.apple.CoreML",
            "description": "CoreML Model Weights",
            "name": "weights",
            "path": "com.apple.CoreML/weights"
        },
        "bbbbbbbb-0000-4000-8000-000000000002": {
            "author": "com.apple.CoreML",
            "description": "CoreML Model Specification",
            "name": "model.mlmodel",
            "path": "com.apple.CoreML/model.mlmodel"
        }
    },
    "rootModelIdentifier": "bbbbbbbb-0000-4000-8000-000000000002"
})";
  EXPECT_EQ(m.to_json(), expected);
}

TEST(Manifest, RootIsTheModelEntryAndRoundTrips) {
  const Manifest m = Manifest::for_ml_program();
  ASSERT_EQ(m.items.size(), 2u);
  EXPECT_EQ(m.root_model_identifier, m.items[1].identifier);
  EXPECT_EQ(m.items[1].name, "model.mlmodel");
  EXPECT_NE(m.items[0].identifier, m.items[1].identifier);
  const Manifest back = Manifest::from_json(m.to_json());
  EXPECT_EQ(back.root_model_identifier, m.root_model_identifier);
  EXPECT_EQ(back.items.size(), 2u);
  EXPECT_EQ(back.to_json(), m.to_json());
}

TEST(Manifest, FromJsonNamesWhatIsMissing) {
  EXPECT_THROW(Manifest::from_json("{"), ExportError);
  EXPECT_THROW(Manifest::from_json(R"({"fileFormatVersion": "1.0.0"})"), ExportError);
  try {
    Manifest::from_json(R"({"fileFormatVersion": "1.0.0", "rootModelIdentifier": "a",
                            "itemInfoEntries": {"a": {"path": "p", "name": "n", "author": "x"}}})");
    FAIL();
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("description"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Manifest::from_json(R"({"fileFormatVersion": "1.0.0", "rootModelIdentifier": "b",
                                       "itemInfoEntries": {}})"),
               ExportError);
}

}  // namespace
}  // namespace linquant::coreml
