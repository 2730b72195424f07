// Data-parallel QAT across real processes on 127.0.0.1 (examples/data_parallel_qat, launched
// the torchrun way): two ranks with half of every batch end 20 SGD steps across all four
// milestones with the weights, observers, quantizer parameters, BatchNorm statistics and
// losses of one process with the whole batch, within 1e-5 (measured: 2e-7). The one process
// runs the same data-parallel path as a world of one, so its BatchNorm statistics come from the
// same float64 sums; against ATen's own BatchNorm (float32 statistics) the last-bit
// differences flip fake-quantization roundings and the runs drift apart by about 1e-3 in 20
// steps. And a worker that dies, or hangs, makes the other stop with an error (at once, or
// after the timeout), writing nothing.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/serialize/input-archive.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "close_to.h"

extern char** environ;

// Built with the examples (LINQUANT_BUILD_APPS, on by default), which give the program to run.
#ifdef LINQUANT_DATA_PARALLEL_QAT
namespace {

namespace fs = std::filesystem;

// Starts the example with `extra_env` added to this process's environment.
pid_t start(const std::vector<std::string>& args, const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(extra_env.begin(), extra_env.end(),
                                        [&](const auto& x) { return x.rfind(name + "=", 0) == 0; });
    if (!overridden && name != "WORLD_SIZE" && name != "RANK") env_strings.push_back(entry);
  }
  std::vector<std::string> argv_strings = {LINQUANT_DATA_PARALLEL_QAT};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  for (std::string& s : env_strings) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()) != 0) {
    throw std::runtime_error("cannot start " + argv_strings[0]);
  }
  return pid;
}

// Exit code (128 + signal when killed); kills the process after `limit`.
int finish(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int free_port() {
  // Ports above the ephemeral range's usual start, picked per test process.
  return 20000 + static_cast<int>(getpid() % 20000);
}

std::vector<std::string> rank_env(int rank, int port) {
  return {"WORLD_SIZE=2",
          "RANK=" + std::to_string(rank),
          "LOCAL_RANK=" + std::to_string(rank),
          "MASTER_ADDR=127.0.0.1",
          "MASTER_PORT=" + std::to_string(port),
          "OMP_NUM_THREADS=1"};
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("linquant_dp_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(DataParallelProcesses, TwoRanksMatchOneProcessOverTheMilestones) {
  const fs::path dir = fresh_dir("match");
  const std::string one = (dir / "one.pt").string();
  const std::string two = (dir / "two.pt").string();
  const int port = free_port();
  const std::vector<std::string> alone = {"WORLD_SIZE=1",
                                          "RANK=0",
                                          "LOCAL_RANK=0",
                                          "MASTER_ADDR=127.0.0.1",
                                          "MASTER_PORT=" + std::to_string(port + 2),
                                          "OMP_NUM_THREADS=1"};
  ASSERT_EQ(finish(start({one}, alone), std::chrono::seconds(300)), 0);
  const pid_t r0 = start({two}, rank_env(0, port));
  const pid_t r1 = start({two}, rank_env(1, port));
  ASSERT_EQ(finish(r0, std::chrono::seconds(300)), 0);
  ASSERT_EQ(finish(r1, std::chrono::seconds(60)), 0);

  torch::serialize::InputArchive a, b;
  a.load_from(one);
  b.load_from(two);
  const std::vector<std::string> keys = a.keys();
  ASSERT_GT(keys.size(), 20u);
  for (const std::string& key : keys) {
    at::Tensor want, got;
    ASSERT_TRUE(a.try_read(key, want)) << key;
    ASSERT_TRUE(b.try_read(key, got)) << key;
    EXPECT_TRUE(linquant::distributed::close_to(got, want)) << key << ": " << got << " vs " << want;
  }
  fs::remove_all(dir);
}

// Ranks 0 and 1 with a `timeout_seconds` timeout, rank 1 also given `fault` (an example test
// hook); rank 1 is killed once rank 0 has stopped. Rank 0 must stop by itself with an error
// and leave nothing in its output folder.
struct FaultOutcome {
  int faulty_exit = 0;  // rank 1's exit code
  double seconds = 0;   // until rank 0 stopped
};

FaultOutcome run_with_faulty_rank(const std::string& name, const std::string& timeout_seconds,
                                  const std::vector<std::string>& fault, int port) {
  const fs::path dir = fresh_dir(name);
  const std::string out = (dir / "out.pt").string();
  const auto started = std::chrono::steady_clock::now();
  const pid_t r0 = start({out, "--timeout-seconds", timeout_seconds}, rank_env(0, port));
  std::vector<std::string> faulty_args = {out, "--timeout-seconds", timeout_seconds};
  faulty_args.insert(faulty_args.end(), fault.begin(), fault.end());
  const pid_t r1 = start(faulty_args, rank_env(1, port));
  const int survivor = finish(r0, std::chrono::seconds(120));
  FaultOutcome outcome;
  outcome.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  kill(r1, SIGKILL);
  outcome.faulty_exit = finish(r1, std::chrono::seconds(10));
  EXPECT_NE(survivor, 0);
  EXPECT_NE(survivor, -1) << "rank 0 did not stop by itself";
  EXPECT_LT(outcome.seconds, 60.0);
  EXPECT_TRUE(fs::is_empty(dir)) << "output left behind";
  fs::remove_all(dir);
  return outcome;
}

TEST(DataParallelProcesses, ADeadWorkerStopsTheOtherWithinTheTimeout) {
  const FaultOutcome outcome =
      run_with_faulty_rank("dead", "10", {"--exit-at-step", "5"}, free_port() + 1);
  EXPECT_EQ(outcome.faulty_exit, 3);
}

TEST(DataParallelProcesses, AHungWorkerStopsTheOtherAfterTheTimeout) {
  const FaultOutcome outcome =
      run_with_faulty_rank("hung", "5", {"--hang-at-step", "5"}, free_port() + 3);
  EXPECT_GT(outcome.seconds, 4.0) << "stopped before the timeout: not by it";
}

}  // namespace
#endif  // LINQUANT_DATA_PARALLEL_QAT
