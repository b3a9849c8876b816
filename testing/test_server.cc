#include "testing/test_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/random.h"

namespace drover::testing {
namespace {

// Everything the child needs is built before fork: between fork and exec a child of a
// multi-threaded process may only make async-signal-safe calls (no malloc, no putenv).
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::string& log_path, int fd_limit = 0, std::string bin = DROVER_BIN,
            const std::string& stdin_path = "/dev/null") {
  std::vector<char*> argv;
  argv.push_back(bin.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The environment: ours, with `env` entries replacing same-named ones.
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (const auto& x : env) replaced |= x.starts_with(std::string(name) + "=");
    if (!replaced) vars.emplace_back(kv);
  }
  vars.insert(vars.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int devnull = open(stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  rlimit rl{static_cast<rlim_t>(fd_limit), static_cast<rlim_t>(fd_limit)};
  pid_t pid = fork();
  if (pid == 0) {
    if (fd_limit > 0) setrlimit(RLIMIT_NOFILE, &rl);
    dup2(fd, 1);  // dup2 clears O_CLOEXEC on the copies
    dup2(fd, 2);
    dup2(devnull, 0);
    execve(bin.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  if (fd >= 0) close(fd);
  if (devnull >= 0) close(devnull);
  return pid;
}

int WaitExit(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    usleep(10000);
  }
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int RunDrover(const std::vector<std::string>& args, std::string* output,
              const std::vector<std::string>& env) {
  return RunDroverWithInput(args, "", output, env);
}

int RunDroverWithInput(const std::vector<std::string>& args, const std::string& input,
                       std::string* output, const std::vector<std::string>& env) {
  TempDir dir;
  std::string log = dir.File("out");
  std::string in = dir.File("in");
  std::ofstream(in) << input;
  pid_t pid = Spawn(args, env, log, 0, DROVER_BIN, in);
  int rc = WaitExit(pid, 60000);
  if (rc < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  if (output) *output = ReadFile(log);
  return rc;
}

TestServer::TestServer(std::vector<std::string> extra_args, std::string data_dir,
                       std::vector<std::string> env)
    : data_dir_(data_dir.empty() ? own_dir_.path() : std::move(data_dir)),
      extra_args_(std::move(extra_args)),
      env_(std::move(env)) {
  // A server restarted on the same data dir keeps the admin key it was bootstrapped with.
  std::string key_file = data_dir_ + "/test-admin-key";
  std::ifstream in(key_file);
  if (!(in >> admin_key_)) {
    admin_key_ = "test-admin-" + RandomHex(16);
    std::ofstream(key_file) << admin_key_ << "\n";
  }
}

TestServer::~TestServer() { Kill(); }

bool TestServer::Start() {
  std::string addr_file = data_dir_ + "/server.addr";
  unlink(addr_file.c_str());
  std::vector<std::string> args = {"server",      "--listen", listen_,     "--data-dir", data_dir_,
                                   "--addr-file", addr_file,  "--threads", "2"};
  // Tests run every provider (the local one starts real agents) unless they choose.
  if (std::find(extra_args_.begin(), extra_args_.end(), "--providers") == extra_args_.end()) {
    args.insert(args.end(), {"--providers", "static,exec,local"});
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<std::string> env = env_;
  if (use_token_) env.push_back("DROVER_BOOTSTRAP_TOKEN=" + admin_key_);
  pid_ = Spawn(args, env, data_dir_ + "/server.log", fd_limit_);
  bool up = WaitFor(
      [&] {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          return true;  // exited: stop waiting
        }
        std::ifstream f(addr_file);
        std::string a;
        if (!(f >> a)) return false;
        addr_ = "http://" + a;
        client::Client c({addr_, ""});
        auto r = c.Do("GET", "/healthz");
        return r.ok() && r->status == 200;
      },
      30000);
  if (!up || pid_ < 0) {
    ADD_FAILURE() << "drover server did not start; log:\n" << Log();
    return false;
  }
  if (!use_token_) {
    std::string log = Log();
    auto k = log.find("\n  drv_");
    admin_key_ = k == std::string::npos ? "" : log.substr(k + 3, log.find('\n', k + 3) - k - 3);
  }
  return true;
}

int TestServer::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int rc = WaitExit(pid_, 60000);
  if (rc < 0) {
    std::string log = Log();
    ADD_FAILURE() << "drover server did not exit within 60 s of SIGTERM; its log ends:\n"
                  << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
    Kill();
  }
  pid_ = -1;
  return rc;
}

void TestServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string TestServer::Log() const { return ReadFile(data_dir_ + "/server.log"); }

client::Client TestServer::NewClient(std::string token) const {
  return client::Client({addr_, token.empty() ? admin_key_ : token});
}

TestProcess::TestProcess(std::vector<std::string> args, std::string log_path,
                         std::vector<std::string> env)
    : log_(std::move(log_path)) {
  pid_ = Spawn(args, env, log_);
}

TestProcess::TestProcess(Program program, std::vector<std::string> args, std::string log_path)
    : log_(std::move(log_path)) {
  pid_ = Spawn(args, {}, log_, 0, std::move(program.path));
}

TestProcess::~TestProcess() { Kill(); }

int TestProcess::Stop(int sig, int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int rc = WaitExit(pid_, timeout_ms);
  if (rc < 0) {
    Kill();
    return -1;
  }
  pid_ = -1;
  return rc;
}

int TestProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  int rc = WaitExit(pid_, timeout_ms);
  if (rc >= 0) pid_ = -1;
  return rc;
}

void TestProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string TestProcess::Log() const { return ReadFile(log_); }

std::map<std::string, std::string> AllVariables(client::Client& c) {
  std::map<std::string, std::string> out;
  std::string cursor;
  do {
    auto r = c.Do("GET", "/v1/variables?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    if (!r.ok() || r->status != 200) {
      ADD_FAILURE() << "listing variables failed";
      return out;
    }
    auto v = boost::json::parse(r->body);
    for (auto& it : v.at("items").as_array()) {
      out[std::string(it.at("key").as_string())] = std::string(it.at("value").as_string());
    }
    cursor = v.at("next_cursor").is_null() ? "" : std::string(v.at("next_cursor").as_string());
  } while (!cursor.empty());
  return out;
}

}  // namespace drover::testing
