// The failure of a collective operation with other processes (data-parallel training).
#pragma once

#include "linquant/common/error.h"

namespace linquant {

// A peer died, hung past the timeout or could not be reached. The runtime passes it on
// unchanged, so callers can tell a lost worker from a bad model or input.
class CommunicationError : public Error {
 public:
  using Error::Error;
};

}  // namespace linquant
