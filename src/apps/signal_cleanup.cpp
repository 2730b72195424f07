// Async-signal-safe removal of temporary folders: fixed slots written before a handler can
// read them, and a recursive delete made of openat/getdents64/unlinkat only.
#include "signal_cleanup.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include "app_error.h"

namespace linquant::apps {
namespace {

constexpr int kSlots = 8;

struct Slot {
  std::atomic<bool> used{false};
  char path[PATH_MAX] = {};
};

Slot g_slots[kSlots];

// The kernel's directory record (getdents64 has no glibc wrapper in Debian 12's glibc 2.36).
struct DirectoryEntry {
  ino64_t inode;
  off64_t next;
  unsigned short length;
  unsigned char type;
  char name[];
};

bool is_dot_or_dot_dot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Deletes `name` in `parent` (a file, or a folder with everything in it); best effort.
void remove_tree_at(int parent, const char* name, int depth) {
  if (::unlinkat(parent, name, 0) == 0 || depth > 32) return;
  const int folder = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (folder < 0) return;
  // Deleting while listing may skip entries: list again until a pass finds nothing.
  for (int pass = 0; pass < 16; ++pass) {
    bool found = false;
    ::lseek(folder, 0, SEEK_SET);
    alignas(8) char buffer[4096];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, folder, buffer, sizeof buffer);
      if (n <= 0) break;
      for (long offset = 0; offset < n;) {
        const auto* entry = reinterpret_cast<const DirectoryEntry*>(buffer + offset);
        offset += entry->length;
        if (is_dot_or_dot_dot(entry->name)) continue;
        found = true;
        remove_tree_at(folder, entry->name, depth + 1);
      }
    }
    if (!found) break;
  }
  ::close(folder);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

std::atomic<int> g_deferring{0};
volatile std::sig_atomic_t g_pending = 0;

extern "C" void remove_and_reraise(int signal_number) {
  if (g_deferring.load() > 0 && signal_number != SIGPIPE && g_pending == 0) {
    g_pending = signal_number;  // the training loop stops at the end of its step
    return;
  }
  for (Slot& slot : g_slots) {
    if (slot.used.load()) remove_tree_at(AT_FDCWD, slot.path, 0);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);  // delivered when the handler returns: the usual exit status
}

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    // SIGHUP: the terminal closed; SIGPIPE: e.g. stderr piped into `head`, which exited.
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
      std::signal(signal_number, remove_and_reraise);
    }
  });
}

}  // namespace

int remove_on_signal(const std::string& path) {
  if (path.size() >= PATH_MAX) throw UsageError("path too long: " + path);
  install_handlers();
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  for (int i = 0; i < kSlots; ++i) {
    if (g_slots[i].used.load()) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].used.store(true);  // after the path: a handler never sees half of it
    return i;
  }
  throw UsageError("too many outputs staged at once");
}

void forget_on_signal(int handle) {
  if (handle >= 0 && handle < kSlots) g_slots[handle].used.store(false);
}

DeferredSignals::DeferredSignals() {
  install_handlers();
  ++g_deferring;
}

DeferredSignals::~DeferredSignals() { --g_deferring; }

int pending_signal() { return g_pending; }

}  // namespace linquant::apps
