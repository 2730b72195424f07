// Process-wide warning sink; a mutex keeps concurrent warnings whole.
#include "linquant/common/warning.h"

#include <iostream>
#include <mutex>

namespace linquant {
namespace {

std::mutex& handler_mutex() {
  static std::mutex m;
  return m;
}

WarningHandler& current_handler() {
  static WarningHandler handler;
  return handler;
}

}  // namespace

void warn(const std::string& message) {
  std::lock_guard<std::mutex> lock(handler_mutex());
  if (current_handler()) {
    current_handler()(message);
  } else {
    std::cerr << "linquant warning: " << message << "\n";
  }
}

WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(handler_mutex());
  WarningHandler previous = std::move(current_handler());
  current_handler() = std::move(handler);
  return previous;
}

ScopedWarningCapture::ScopedWarningCapture() {
  previous_ = set_warning_handler([this](const std::string& message) {
    text_ += message;
    text_ += "\n";
    ++count_;
  });
}

ScopedWarningCapture::~ScopedWarningCapture() { set_warning_handler(std::move(previous_)); }

}  // namespace linquant
