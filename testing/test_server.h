#pragma once
// A real `drover server` child process on a free loopback port with its own data dir, for
// integration tests. Stop() sends SIGTERM and waits; Kill() sends SIGKILL; the destructor kills
// whatever is still running, so a failing test never leaves a process behind.
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "client/client.h"
#include "testing/temp_dir.h"

namespace drover::testing {

// Runs the drover binary with `args`, capturing stdout+stderr; returns the exit code.
int RunDrover(const std::vector<std::string>& args, std::string* output,
              const std::vector<std::string>& env = {});
// The same with `input` on its stdin.
int RunDroverWithInput(const std::vector<std::string>& args, const std::string& input,
                       std::string* output, const std::vector<std::string>& env = {});

// Every variable (key → value) the server at the other end of `c` holds, following cursors.
std::map<std::string, std::string> AllVariables(client::Client& c);

// Any drover child process (e.g. `drover agent ...`) with its output in a log file; killed by
// the destructor if still running.
class TestProcess {
 public:
  TestProcess(std::vector<std::string> args, std::string log_path,
              std::vector<std::string> env = {});
  // Another program than drover (a test harness binary).
  struct Program {
    std::string path;
  };
  TestProcess(Program program, std::vector<std::string> args, std::string log_path);
  ~TestProcess();
  TestProcess(const TestProcess&) = delete;
  TestProcess& operator=(const TestProcess&) = delete;
  // Sends `sig` and waits up to `timeout_ms` for the exit; returns its status (-1: still
  // running, then killed).
  int Stop(int sig = 15, int timeout_ms = 60000);
  // Waits for the exit without signalling; -1 on timeout (the process keeps running).
  int Wait(int timeout_ms);
  void Kill();
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

class TestServer {
 public:
  // `data_dir` empty: a fresh temp dir owned by the server object.
  explicit TestServer(std::vector<std::string> extra_args = {}, std::string data_dir = "",
                      std::vector<std::string> env = {});
  ~TestServer();

  // Starts the process and waits until /healthz answers. False (with the log in the failure
  // message) when it does not come up.
  bool Start();
  int Stop();   // SIGTERM; returns the exit status (-1 if it did not exit)
  void Kill();  // SIGKILL and reap

  const std::string& addr() const { return addr_; }  // http://127.0.0.1:PORT
  const std::string& admin_key() const { return admin_key_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string Log() const;
  pid_t pid() const { return pid_; }
  client::Client NewClient(std::string token = "") const;
  bool running() const { return pid_ > 0; }
  // Without a DROVER_BOOTSTRAP_TOKEN the server prints a key on first start; admin_key() then
  // holds the key read from its output (or stays empty when none was printed).
  void UseBootstrapToken(bool use) { use_token_ = use; }
  // Starts the process with at most `n` open file descriptors (RLIMIT_NOFILE).
  void LimitOpenFiles(int n) { fd_limit_ = n; }
  // Later Start()s listen on the port the server has now (a restart keeps its address).
  void KeepPort() { listen_ = addr_.substr(7); }

 private:
  TempDir own_dir_;
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> env_;
  std::string addr_;
  std::string admin_key_;
  pid_t pid_ = -1;
  bool use_token_ = true;
  int fd_limit_ = 0;
  std::string listen_ = "127.0.0.1:0";
};

}  // namespace drover::testing
