// `--nproc N` of `linquant train` and `quantize`: the command runs as N worker processes on this
// machine, started with the variables torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so that a worker cannot tell the two launchers
// apart. With --nnodes M, one such launcher per machine (--node-rank 0..M-1, the same
// MASTER_ADDR and MASTER_PORT) makes one job of M*N workers.
//
// The launcher relays rank 0's progress, and when a worker fails it stops the others and prints
// one error line, that of the worker that failed first, naming its rank.
#pragma once

#include <chrono>

namespace CLI {
class App;
}  // namespace CLI

namespace linquant::apps {

struct LaunchOptions {
  int nproc = 1;      // workers on this machine
  int nnodes = 1;     // machines
  int node_rank = 0;  // this machine's place among them
  // Bounds the rendezvous and every collective: a dead or hung worker makes the others stop
  // with an error after at most this long.
  int worker_timeout_seconds = 300;

  std::chrono::seconds worker_timeout() const {
    return std::chrono::seconds(worker_timeout_seconds);
  }
};

// --nproc, --nnodes, --node-rank, --worker-timeout on a command.
void add_launch_options(CLI::App& app, LaunchOptions& options);

// main() keeps the command line so that workers can be started with the same arguments.
void remember_command_line(int argc, const char* const* argv);

// True when this process is to start workers rather than run the command itself: more than
// one worker asked for, and not a worker already (UsageError for --nproc under torchrun, or
// for --nnodes without MASTER_ADDR and MASTER_PORT).
bool launches_workers(const LaunchOptions& options);

// UsageError when a run with workers (--nproc or --nnodes above 1, or a worker of a job of
// several) asks for checkpoints (--checkpoint-every, --resume).
void refuse_checkpoints_with_workers(const LaunchOptions& options, bool checkpointing);

// Starts the workers, relays their output, waits; returns the command's exit code.
int launch_workers(const LaunchOptions& options);

}  // namespace linquant::apps
