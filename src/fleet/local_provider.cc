#include "fleet/local_provider.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/log.h"
#include "common/process.h"

extern char** environ;

namespace drover::fleet {
namespace {

namespace fs = std::filesystem;

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

struct PidInfo {
  int pid = 0;
  int64_t start = -1;
};

PidInfo ReadPidInfo(const std::string& data) {
  PidInfo p;
  boost::system::error_code ec;
  auto v = boost::json::parse(data, ec);
  if (ec || !v.is_object()) return p;
  const auto& o = v.as_object();
  if (auto* x = o.if_contains("pid"); x && x->is_int64()) p.pid = static_cast<int>(x->as_int64());
  if (auto* x = o.if_contains("start"); x && x->is_int64()) p.start = x->as_int64();
  return p;
}

bool Running(const PidInfo& p) {
  if (p.pid <= 0) return false;
  ::waitpid(p.pid, nullptr, WNOHANG);  // our child: reap it if it exited (no zombie)
  return ProcessStartTime(p.pid) == p.start;
}

// The processes of session `sid` (the agent's: it is started with setsid, and its runs, in
// process groups of their own, stay in its session).
std::vector<int> SessionMembers(int sid) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    int ppid = 0, pgrp = 0, session = 0;
    if (rest >> state >> ppid >> pgrp >> session && session == sid) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

void SignalSession(int sid, int sig) {
  for (int pid : SessionMembers(sid)) ::kill(pid, sig);
}

// SIGTERM to the agent and everything it started (its session: a service its run left running
// too), SIGKILL to whatever is left after 5 s.
void Stop(const PidInfo& p) {
  if (!Running(p)) return;
  ::kill(-p.pid, SIGTERM);
  SignalSession(p.pid, SIGTERM);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0));
  for (int waited = 0; waited < 5000 && Running(p); waited += 20) {
    if (pidfd >= 0) {
      pollfd f{pidfd, POLLIN, 0};
      ::poll(&f, 1, 20);
    } else {
      ::usleep(20000);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  if (Running(p)) {
    LogWarn("local agent {} did not stop within 5 s of SIGTERM: killed", p.pid);
    ::kill(-p.pid, SIGKILL);
    ::waitpid(p.pid, nullptr, 0);  // our child: gone at once after SIGKILL (ECHILD if adopted)
  }
  SignalSession(p.pid, SIGKILL);
}

}  // namespace

int64_t ProcessStartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // Fields after the command (which may hold spaces) start behind the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Field 3 is the state: a zombie has exited.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && field == "Z") return -1;
    if (i == 22) return std::atoll(field.c_str());
  }
  return -1;
}

LocalProvider::LocalProvider(LocalOptions options) : o_(std::move(options)) {
  if (o_.binary.empty()) o_.binary = fs::read_symlink("/proc/self/exe").string();
}

LocalProvider::~LocalProvider() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    watcher_.join();
  }
  for (auto& [pid, fd] : watched_) ::close(fd);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void LocalProvider::SetOnChange(std::function<void()> fn) {
  on_exit_ = std::move(fn);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return;  // no watching: the controller's poll remains
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // the wake fd
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  watcher_ = std::thread([this] { WatchLoop(); });
}

void LocalProvider::Watch(int pid) {
  if (!watcher_.joinable() || pid <= 0) return;
  std::lock_guard lock(watch_mu_);
  if (watched_.count(pid)) return;
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return;  // gone already: the controller's next look sees it
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(pid);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return;
  }
  watched_[pid] = fd;
}

void LocalProvider::WatchLoop() {
  epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_fd_, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    bool exited = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) return;  // the wake fd: stopping
      int pid = static_cast<int>(events[i].data.u64);
      std::lock_guard lock(watch_mu_);
      if (auto it = watched_.find(pid); it != watched_.end()) {
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
        ::close(it->second);
        watched_.erase(it);
        // Our child: reaped at once, no zombie (ECHILD for one adopted after a restart).
        ::waitpid(pid, nullptr, WNOHANG);
        exited = true;
      }
    }
    if (exited && on_exit_) on_exit_();
  }
}

void LocalProvider::SetServerUrl(const std::string& url) {
  std::lock_guard lock(mu_);
  o_.server_url = std::move(url);
}

Result<Started> LocalProvider::Create(const env::Environment& env, const std::string& instance_id) {
  std::lock_guard lock(mu_);
  std::string dir = o_.data_dir + "/instances/" + instance_id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Unavailable(fmt::format("cannot create {}: {}", dir, ec.message()));
  int port = FreePort();
  // Everything the child needs is built before fork (the server has many threads).
  std::vector<std::string> args = {o_.binary, "agent", "--server", o_.server_url, "--environment",
                                   env.name, "--instance-id", instance_id, "--work-dir",
                                   dir + "/work",
                                   // The instance's own output (the agent's, and what its
                                   // runs leave running) goes to the log store too.
                                   "--ship-log", dir + "/agent.log"};
  std::vector<std::string> vars;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("PORT=") && !kv.starts_with("DROVER_")) vars.emplace_back(kv);
  }
  vars.push_back("PORT=" + std::to_string(port));
  // The join token goes in the environment, never on the command line (ps shows that to every
  // user of the host); the agent removes it from what its runs inherit.
  vars.push_back("DROVER_JOIN_TOKEN=" + env.join_token);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string log = dir + "/agent.log";
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || devnull < 0) {
    if (out >= 0) ::close(out);
    if (devnull >= 0) ::close(devnull);
    return Status::Unavailable(fmt::format("cannot open {}: {}", log, std::strerror(errno)));
  }
  bool die_with_server = o_.stop_with_server;
  pid_t parent = ::getpid();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();  // its own session and process group: stopped as a group, not by our terminal
    if (die_with_server) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(0);
    }
    PrepareChild(devnull, out, out);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(out);
  ::close(devnull);
  if (pid < 0) return Status::Unavailable(fmt::format("fork: {}", std::strerror(errno)));
  Started s;
  s.provider_id = fmt::format("local:{}", pid);
  s.address = fmt::format("127.0.0.1:{}", port);
  // The start time read at once: a pid reused later by another process has another.
  int64_t start = ProcessStartTime(pid);
  s.data = boost::json::serialize(
      boost::json::object{{"pid", pid}, {"start", start}, {"port", port}, {"dir", dir}});
  std::ofstream(dir + "/instance.json") << s.data;
  Watch(pid);
  return s;
}

Status LocalProvider::Delete(const env::Environment&, const env::Instance& inst) {
  auto p = ReadPidInfo(inst.provider_data);
  if (p.pid > 0 && !Running(p)) LogInfo("local instance {}: agent {} already gone", inst.id, p.pid);
  Stop(p);
  std::error_code ec;
  fs::remove_all(o_.data_dir + "/instances/" + inst.id, ec);
  return Status::Ok();
}

std::optional<bool> LocalProvider::Alive(const env::Environment&, const env::Instance& inst) {
  if (inst.provider_data.empty()) return std::nullopt;  // not started yet (or not by us)
  auto p = ReadPidInfo(inst.provider_data);
  bool running = Running(p);
  if (running) Watch(p.pid);  // e.g. adopted after a server restart
  return running;
}

void LocalProvider::Sweep(const std::function<std::optional<bool>(const std::string& id)>& live) {
  // Reap agents that exited (the server's only children): no zombies, and Alive() sees them gone.
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.data_dir + "/instances", ec)) {
    std::string id = e.path().filename().string();
    if (live(id).value_or(true)) continue;
    Stop(ReadPidInfo(ReadFile(e.path() / "instance.json").value_or("")));
    fs::remove_all(e.path(), ec);
    LogInfo("local instance {} is not in the store: stopped and removed", id);
  }
}

void LocalProvider::StopAll() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.data_dir + "/instances", ec)) {
    Stop(ReadPidInfo(ReadFile(e.path() / "instance.json").value_or("")));
  }
}

}  // namespace drover::fleet
