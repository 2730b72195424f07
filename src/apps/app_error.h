// Errors of the command line itself (bad options, unusable paths). Like every linquant::Error
// they end the command with a one-line message and exit code 2.
#pragma once

#include "linquant/common/error.h"

namespace linquant::apps {

class UsageError : public Error {
 public:
  using Error::Error;
};

// Exit codes of the `linquant` command.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;   // an internal failure (a bug): reported, never a stack trace
constexpr int kExitBadInput = 2;  // the user's input: data, config, model, paths, options
constexpr int kExitWorkerLost = 3;  // data-parallel: a worker died, hung or was not reached

}  // namespace linquant::apps
