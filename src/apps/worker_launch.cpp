// Local worker processes for `--nproc`: fork/exec of this executable with torchrun's variables,
// their stderr relayed through pipes so that a failure ends in one error line.
#include "worker_launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "app_error.h"

namespace linquant::apps {
namespace {

std::vector<std::string>& command_line() {
  static std::vector<std::string> arguments;
  return arguments;
}

// The arguments a worker gets: the launcher's own, without the launch options.
std::vector<std::string> worker_arguments() {
  static const std::vector<std::string> launch_only = {"--nproc", "--nnodes", "--node-rank"};
  std::vector<std::string> kept;
  const std::vector<std::string>& all = command_line();
  for (size_t i = 1; i < all.size(); ++i) {
    bool dropped = false;
    for (const std::string& option : launch_only) {
      if (all[i] == option) {
        ++i;  // and its value
        dropped = true;
      } else if (all[i].rfind(option + "=", 0) == 0) {
        dropped = true;
      }
    }
    if (!dropped) kept.push_back(all[i]);
  }
  return kept;
}

// A port nobody listens on now, for rank 0's store (the kernel picks it).
int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!ok) throw Error(std::string("cannot find a free local port: ") + std::strerror(errno));
  return ntohs(address.sin_port);
}

// How long stopped workers get to remove their temporary output before SIGKILL.
constexpr std::chrono::seconds kGraceBeforeKill(10);

bool is_error_line(const std::string& line) {
  return line.rfind("linquant: error: ", 0) == 0 ||
         line.rfind("linquant: internal error: ", 0) == 0;
}

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  int stderr_fd = -1;   // read end; -1 once closed
  std::string pending;  // output not yet ended by a newline or carriage return
  std::string error;    // its first error line, held back
  int error_order = 0;  // when that line arrived, among all workers' error lines
  bool running = true;
  int status = 0;
  bool stopped_by_us = false;
};

std::atomic<int> received_signal{0};
extern "C" void record_signal(int signal_number) { received_signal = signal_number; }

// The child only calls async-signal-safe functions between fork and exec: its argument and
// environment arrays are made before the fork.
pid_t start_worker(const std::vector<std::string>& arguments,
                   const std::vector<std::pair<std::string, std::string>>& environment,
                   int stderr_write) {
  static std::string self = "/proc/self/exe";
  std::vector<char*> argv = {self.data()};
  for (const std::string& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> variables;
  for (const auto& [name, value] : environment) variables.push_back(name + "=" + value);
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [given, value] : environment) replaced = replaced || given == name;
    if (!replaced) variables.push_back(entry);
  }
  std::vector<char*> envp;
  for (std::string& v : variables) envp.push_back(v.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start a worker: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(stderr_write, STDERR_FILENO);
    execve(self.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

bool succeeded(const Worker& worker) {
  return WIFEXITED(worker.status) && WEXITSTATUS(worker.status) == 0;
}

// Hands complete lines (and carriage-return redraws) on to stderr, holding error lines back.
void relay(Worker& worker, const char* data, size_t size) {
  static int error_lines = 0;
  worker.pending.append(data, size);
  size_t start = 0;
  for (size_t i = 0; i < worker.pending.size(); ++i) {
    const char c = worker.pending[i];
    if (c != '\n' && c != '\r') continue;
    const std::string piece = worker.pending.substr(start, i + 1 - start);
    if (is_error_line(piece)) {
      if (worker.error.empty()) {
        worker.error = piece.substr(0, piece.size() - 1);
        worker.error_order = ++error_lines;
      }
    } else {
      std::fwrite(piece.data(), 1, piece.size(), stderr);
    }
    start = i + 1;
  }
  worker.pending.erase(0, start);
  std::fflush(stderr);
}

std::string describe_signal(int signal_number) {
  const char* name = strsignal(signal_number);
  return "signal " + std::to_string(signal_number) + (name ? std::string(" (") + name + ")" : "");
}

}  // namespace

void add_launch_options(CLI::App& app, LaunchOptions& options) {
  app.add_option("--nproc", options.nproc,
                 "worker processes on this machine (data-parallel, see docs/distributed.md)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--nnodes", options.nnodes,
                 "machines in the job; each runs the same command with its --node-rank and the "
                 "same MASTER_ADDR and MASTER_PORT")
      ->check(CLI::Range(1, 1 << 14))
      ->capture_default_str();
  app.add_option("--node-rank", options.node_rank, "this machine's number, 0 to nnodes-1")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--worker-timeout", options.worker_timeout_seconds,
                 "seconds a worker waits for the others before it stops with an error")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
}

void remember_command_line(int argc, const char* const* argv) {
  command_line().assign(argv, argv + argc);
}

void refuse_checkpoints_with_workers(const LaunchOptions& o, bool checkpointing) {
  const char* world = std::getenv("WORLD_SIZE");
  const bool parallel = o.nproc > 1 || o.nnodes > 1 || (world && std::string(world) != "1");
  if (parallel && checkpointing) {
    throw UsageError(
        "--checkpoint-every and --resume work with one process only, not with workers");
  }
}

bool launches_workers(const LaunchOptions& o) {
  if (o.node_rank >= o.nnodes) {
    throw UsageError("--node-rank must be below --nnodes (" + std::to_string(o.nnodes) + ")");
  }
  if (o.nproc == 1 && o.nnodes == 1) return false;
  if (std::getenv("WORLD_SIZE")) {
    throw UsageError(
        "--nproc and --nnodes start workers, but this process already is one (WORLD_SIZE is "
        "set, as torchrun sets it): drop them");
  }
  if (o.nnodes > 1 && (!std::getenv("MASTER_ADDR") || !std::getenv("MASTER_PORT"))) {
    throw UsageError(
        "--nnodes needs MASTER_ADDR and MASTER_PORT: the address and a free port of the "
        "machine with --node-rank 0, the same on every machine");
  }
  return true;
}

int launch_workers(const LaunchOptions& o) {
  const std::string master_addr = o.nnodes > 1 ? std::getenv("MASTER_ADDR") : "127.0.0.1";
  const std::string master_port =
      o.nnodes > 1 ? std::getenv("MASTER_PORT") : std::to_string(free_local_port());
  const std::vector<std::string> arguments = worker_arguments();
  // Rank 0's progress keeps its terminal form although it reaches the terminal through a pipe.
  const bool terminal = isatty(STDERR_FILENO) && !std::getenv("LINQUANT_PROGRESS");

  for (int s : {SIGINT, SIGTERM, SIGHUP}) std::signal(s, record_signal);
  std::vector<Worker> workers(static_cast<size_t>(o.nproc));
  for (int local = 0; local < o.nproc; ++local) {
    Worker& w = workers[static_cast<size_t>(local)];
    w.rank = o.node_rank * o.nproc + local;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
    std::vector<std::pair<std::string, std::string>> environment = {
        {"WORLD_SIZE", std::to_string(o.nnodes * o.nproc)},
        {"RANK", std::to_string(w.rank)},
        {"LOCAL_RANK", std::to_string(local)},
        {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
        {"MASTER_ADDR", master_addr},
        {"MASTER_PORT", master_port}};
    if (terminal && w.rank == 0) environment.emplace_back("LINQUANT_PROGRESS", "tty");
    w.pid = start_worker(arguments, environment, fds[1]);
    close(fds[1]);
    w.stderr_fd = fds[0];
  }

  // Relay until every worker has exited and every pipe is drained; on the first failure (or a
  // signal to the launcher) stop the others.
  bool stopping = false;
  std::chrono::steady_clock::time_point stop_time;
  int open_pipes = o.nproc;
  int running = o.nproc;
  while (open_pipes > 0 || running > 0) {
    std::vector<pollfd> polled;
    std::vector<Worker*> owners;
    for (Worker& w : workers) {
      if (w.stderr_fd < 0) continue;
      polled.push_back({w.stderr_fd, POLLIN, 0});
      owners.push_back(&w);
    }
    if (!polled.empty()) {
      poll(polled.data(), polled.size(), 100);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      if (!(polled[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      const ssize_t n = read(polled[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        relay(*owners[i], buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(owners[i]->stderr_fd);
        owners[i]->stderr_fd = -1;
        --open_pipes;
      }
    }
    bool failed = false;
    for (Worker& w : workers) {
      if (!w.running) continue;
      int status = 0;
      if (waitpid(w.pid, &status, WNOHANG) != w.pid) continue;
      w.running = false;
      w.status = status;
      --running;
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) failed = true;
    }
    if ((failed || received_signal != 0) && !stopping) {
      stopping = true;
      stop_time = std::chrono::steady_clock::now();
      const int forwarded = received_signal != 0 ? received_signal.load() : SIGTERM;
      for (Worker& w : workers) {
        if (!w.running) continue;
        w.stopped_by_us = true;
        kill(w.pid, forwarded);
        kill(w.pid, SIGCONT);  // a stopped (hung) worker must run to take the signal
      }
    }
    // A worker that ignores the signal for long is ended without cleanup.
    if (stopping && std::chrono::steady_clock::now() - stop_time > kGraceBeforeKill) {
      for (Worker& w : workers) {
        if (w.running) kill(w.pid, SIGKILL);
      }
    }
  }

  if (received_signal != 0) {
    // Interrupted by the user: end as the workers did, by the signal.
    std::signal(received_signal, SIG_DFL);
    std::raise(received_signal);
  }
  // The cause: a worker killed by a signal nobody here sent (its peers then only report the
  // lost connection), else the first error line that reached the launcher.
  for (const Worker& w : workers) {
    if (WIFSIGNALED(w.status) && !w.stopped_by_us) {
      std::fprintf(stderr,
                   "linquant: error: worker rank %d (pid %d) was killed by %s; the other "
                   "workers were stopped\n",
                   w.rank, static_cast<int>(w.pid), describe_signal(WTERMSIG(w.status)).c_str());
      return kExitWorkerLost;
    }
  }
  const Worker* cause = nullptr;
  for (const Worker& w : workers) {
    if (!w.error.empty() && (!cause || w.error_order < cause->error_order)) cause = &w;
  }
  for (const Worker& w : workers) {
    if (!cause && !succeeded(w)) cause = &w;
  }
  if (!cause) return kExitOk;
  const int code = WIFEXITED(cause->status) && WEXITSTATUS(cause->status) != 0
                       ? WEXITSTATUS(cause->status)
                       : kExitFailure;
  if (cause->error.empty()) {
    std::fprintf(stderr, "linquant: error: worker rank %d failed with exit code %d\n", cause->rank,
                 code);
    return code;
  }
  // "linquant: error: X" becomes "linquant: error: rank R: X".
  const size_t colon = cause->error.find(": ", std::strlen("linquant: ")) + 2;
  std::fprintf(stderr, "%srank %d: %s\n", cause->error.substr(0, colon).c_str(), cause->rank,
               cause->error.substr(colon).c_str());
  return code;
}

}  // namespace linquant::apps
