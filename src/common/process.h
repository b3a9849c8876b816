#pragma once
// Runs one command of an agent run as a child process in its own process group, with its output
// appended to the run's log file (the child writes the file itself: no pipe to keep drained, and
// a background process it leaves behind can go on writing). A timeout or a stop request ends the
// whole group: SIGTERM, then SIGKILL after the grace period.
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace drover {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::string cwd;
  std::vector<std::string> env;  // "NAME=value", the whole environment
  std::string log_path;          // stdout and stderr are appended here
  std::chrono::steady_clock::time_point deadline;
  std::chrono::milliseconds grace{10000};
  // Set by another thread to end the run early: the group gets SIGTERM, then SIGKILL after
  // `grace`.
  const std::atomic<bool>* stop = nullptr;
  std::string stdin_path;   // read as stdin ("" = /dev/null)
  std::string stdout_path;  // stdout goes here instead of log_path (stderr stays in log_path)
};

struct ProcessResult {
  int exit_code = -1;      // the exit status, or 128 + signal
  bool timed_out = false;  // killed at the deadline
  bool stopped = false;    // killed because `stop` was set
  std::string error;       // could not start: why
};

ProcessResult RunProcess(const ProcessSpec& spec);

// The environment of this process as "NAME=value" strings.
std::vector<std::string> CurrentEnvironment();

// In a forked child before exec (async-signal-safe calls only): default signal dispositions, an
// empty signal mask, `in`/`out`/`err` as fds 0/1/2, and every other descriptor closed on exec
// (no inherited listening sockets or connections).
void PrepareChild(int in, int out, int err);

}  // namespace drover
