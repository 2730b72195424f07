// Warnings reach the installed handler, and the capture restores the previous one.
#include "linquant/common/warning.h"

#include <gtest/gtest.h>

namespace linquant {
namespace {

TEST(Warning, CaptureCollectsMessagesInOrder) {
  ScopedWarningCapture capture;
  warn("first");
  warn("second");
  EXPECT_EQ(capture.count(), 2);
  EXPECT_EQ(capture.text(), "first\nsecond\n");
}

TEST(Warning, NestedCaptureRestoresOuterHandler) {
  ScopedWarningCapture outer;
  {
    ScopedWarningCapture inner;
    warn("inner only");
    EXPECT_EQ(inner.count(), 1);
  }
  warn("outer");
  EXPECT_EQ(outer.count(), 1);
  EXPECT_EQ(outer.text(), "outer\n");
}

TEST(Warning, SetHandlerReturnsPrevious) {
  int calls = 0;
  WarningHandler previous = set_warning_handler([&](const std::string&) { ++calls; });
  warn("x");
  WarningHandler mine = set_warning_handler(previous);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(static_cast<bool>(mine));
}

}  // namespace
}  // namespace linquant
