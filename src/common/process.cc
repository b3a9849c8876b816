#include "common/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace drover {

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

void PrepareChild(int in, int out, int err) {
  // Default dispositions and an empty mask: drover blocks signals in its threads.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
}

ProcessResult RunProcess(const ProcessSpec& spec) {
  ProcessResult result;
  if (spec.argv.empty()) {
    result.error = "empty command";
    return result;
  }
  // Everything the child needs is built before fork: between fork and exec only async-signal-
  // safe calls are allowed (the agent has other threads).
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int log = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log < 0) {
    result.error = "cannot open the run log " + spec.log_path + ": " + std::strerror(errno);
    return result;
  }
  int devnull =
      ::open(spec.stdin_path.empty() ? "/dev/null" : spec.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  int out = spec.stdout_path.empty()
                ? ::dup(log)
                : ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (devnull < 0 || out < 0) {
    result.error =
        "cannot open the process's stdin or stdout: " + std::string(std::strerror(errno));
    if (devnull >= 0) ::close(devnull);
    if (out >= 0) ::close(out);
    ::close(log);
    return result;
  }
  // The exec error, if any, comes back through this close-on-exec pipe.
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    ::close(log);
    ::close(devnull);
    ::close(out);
    return result;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    PrepareChild(devnull, out, log);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(errpipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(errpipe[1], &e, sizeof e);
    ::_exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(errpipe[1]);
  ::close(log);
  ::close(devnull);
  ::close(out);
  if (pid < 0) {
    result.error = std::string("fork: ") + std::strerror(errno);
    ::close(errpipe[0]);
    return result;
  }
  ::setpgid(pid, pid);  // also here: no race with a kill before the child ran setpgid
  int child_errno = 0;
  bool exec_failed = ::read(errpipe[0], &child_errno, sizeof child_errno) == sizeof child_errno;
  ::close(errpipe[0]);

  // The exit is noticed at once through a pidfd (Linux 5.3+); the loop also wakes every 50 ms
  // for the deadline, the stop flag and the kill grace. Without pidfds it polls waitpid.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    auto now = std::chrono::steady_clock::now();
    bool stop = spec.stop && spec.stop->load();
    if (!kill_at && (now >= spec.deadline || stop)) {
      result.timed_out = !stop;
      result.stopped = stop;
      ::kill(-pid, SIGTERM);
      kill_at = now + spec.grace;
    } else if (kill_at && now >= *kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    auto next = std::min(spec.deadline, kill_at.value_or(spec.deadline));
    auto wait_ms = std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count(), 1, 50);
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(wait_ms));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(wait_ms, 5)));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  // Whatever the group left behind after a kill goes too: a timed-out run ends with its children.
  if (result.timed_out || result.stopped) ::kill(-pid, SIGKILL);
  if (exec_failed) {
    result.error = "cannot run " + spec.argv[0] + ": " + std::strerror(child_errno);
    result.exit_code = 127;
    return result;
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace drover
