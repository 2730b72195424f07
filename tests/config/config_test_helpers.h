// Helpers shared by the config tests: the message of an expected ConfigError and
// substring / prefix assertions that print both strings on failure.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "linquant/common/error.h"

namespace linquant::testing {

// The what() of the ConfigError thrown by `action`, or a test failure if none is thrown.
inline std::string config_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const ConfigError& error) {
    return error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << error.what();
    return {};
  }
  ADD_FAILURE() << "expected ConfigError, nothing was thrown";
  return {};
}

inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message:  " << text << "\nmissing:  " << part;
}

inline ::testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message:  " << text << "\nexpected prefix:  " << prefix;
}

}  // namespace linquant::testing
