// Whole-file reads and writes for the commands, with the operating system's reason on failure
// and no surprises from special files: a read takes only a regular file of bounded size (so a
// device such as /dev/zero or a fifo cannot exhaust memory), and a write reports a full disk
// instead of leaving a silently short file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace linquant::apps {

// Models, saved models and packages stay far below this; larger files are refused unread.
constexpr uint64_t kMaxReadBytes = uint64_t{4} << 30;

// The bytes of a regular file; UsageError (naming `path` and the reason) otherwise.
std::string read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes = kMaxReadBytes);

// Creates or truncates `path` and writes `bytes`; UsageError with the reason (e.g. "No space
// left on device") when any of it cannot be written.
void write_file_bytes(const std::filesystem::path& path, const std::string& bytes);

// The error for a model file whose own sizes ask for more memory than there is: LibTorch's
// archive reader allocates the lengths a file claims (up to gigabytes from a few bytes of a
// corrupt pickle) before it reads them.
constexpr const char* kClaimsTooMuchMemory =
    "cannot be read: it asks for more memory than there is (a corrupt file?)";

}  // namespace linquant::apps
