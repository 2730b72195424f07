// Whole-file reads and writes with the operating system's reason on failure and no surprises
// from special files: a read takes only a regular file of bounded size (so a device such as
// /dev/zero or a fifo cannot exhaust memory), and a write reports a full disk instead of
// leaving a silently short file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace linquant {

// Models, saved models and packages stay far below this; larger files are refused unread.
constexpr uint64_t kMaxReadBytes = uint64_t{4} << 30;

// The bytes of a regular file; Error ("cannot read PATH: reason") otherwise.
std::string read_file_bytes(const std::filesystem::path& path, uint64_t max_bytes = kMaxReadBytes);

// Creates or truncates `path` and writes `bytes`; Error with the reason (e.g. "No space left
// on device") when any of it cannot be written.
void write_file_bytes(const std::filesystem::path& path, const std::string& bytes);

// Writes `bytes` to a new file beside `path`, syncs it and renames it over `path`: readers see
// the old file or the whole new one, never a part, and a failure leaves the old file as it was.
void replace_file_bytes(const std::filesystem::path& path, const std::string& bytes);

// "512 B", "57.3 kB", "1.20 MB".
std::string format_bytes(uint64_t bytes);

}  // namespace linquant
