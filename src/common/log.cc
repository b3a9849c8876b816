#include "common/log.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/json.h"

namespace drover {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

// Buffers lines; a detached thread writes them every 50 ms. Lives for the whole process.
class Writer {
 public:
  Writer() {
    std::thread([this] { Loop(); }).detach();
  }
  void Append(std::string_view line, bool urgent) {
    std::unique_lock lock(mu_);
    buf_.append(line);
    if (urgent || buf_.size() > (1 << 20)) WriteLocked(lock);
  }
  void Flush() {
    std::unique_lock lock(mu_);
    WriteLocked(lock);
  }

 private:
  // Lock order: mu_, then io_mu_ — never mu_ while holding io_mu_. (Re-taking mu_ with io_mu_
  // still held deadlocked against a thread holding mu_ and waiting for io_mu_: the rare hangs at
  // shutdown under load.)
  void WriteLocked(std::unique_lock<std::mutex>& lock) {
    std::string out;
    out.swap(buf_);
    std::unique_lock io(io_mu_);  // taken before mu_ is let go: chunks keep their order
    lock.unlock();
    const char* p = out.data();
    size_t n = out.size();
    while (n > 0) {
      ssize_t w = ::write(2, p, n);
      if (w <= 0) break;
      p += w;
      n -= static_cast<size_t>(w);
    }
    io.unlock();
    lock.lock();
  }
  void Loop() {
    // Never the thread a process-directed signal lands on: the server waits for SIGTERM with
    // sigwait on its main thread, and this thread may start before the mask is set.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      Flush();
    }
  }
  std::mutex mu_;
  std::mutex io_mu_;
  std::string buf_;
};

Writer& GetWriter() {
  static Writer* w = new Writer();  // never destroyed: threads may log during exit
  return *w;
}

constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error"};

// "2026-11-23T10:00:00." is formatted once per second per thread (gmtime_r takes a lock in
// glibc); each line appends only the milliseconds.
void AppendTime(std::string& out) {
  thread_local int64_t cached_sec = -1;
  thread_local char prefix[32];
  thread_local size_t prefix_len = 0;
  auto now = SystemClock::Get().Now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  int64_t sec = ms / 1000;
  if (sec != cached_sec) {
    std::time_t t = sec;
    std::tm tm{};
    gmtime_r(&t, &tm);
    prefix_len = fmt::format_to_n(prefix, sizeof prefix, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                  tm.tm_min, tm.tm_sec)
                     .size;
    cached_sec = sec;
  }
  out.append(prefix, prefix_len);
  int m = static_cast<int>(ms % 1000);
  out += static_cast<char>('0' + m / 100);
  out += static_cast<char>('0' + m / 10 % 10);
  out += static_cast<char>('0' + m % 10);
  out += 'Z';
}

}  // namespace

void InitLogging(LogFormat format, LogLevel level) {
  g_json = format == LogFormat::kJson;
  g_level = static_cast<int>(level);
  GetWriter();
}

bool ParseLogLevel(std::string_view s, LogLevel* out) {
  for (int i = 0; i < 4; ++i) {
    if (s == kLevelNames[i]) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  Log(level, msg, std::span<const LogField>(fields.begin(), fields.size()));
}

void Log(LogLevel level, std::string_view msg, std::span<const LogField> fields) {
  if (!LogEnabled(level)) return;
  thread_local std::string line;  // reused: no allocation per line
  line.clear();
  auto lvl = kLevelNames[static_cast<int>(level)];
  if (g_json) {
    line += "{\"time\":\"";
    AppendTime(line);
    line += "\",\"level\":\"";
    line += lvl;
    line += "\",\"msg\":";
    AppendJsonString(line, msg);
    for (const auto& f : fields) {
      // Keys are identifiers written in the code: no escaping needed.
      line += ",\"";
      line += f.key;
      line += "\":";
      AppendJsonString(line, f.value);
    }
    line += "}\n";
  } else {
    AppendTime(line);
    line += ' ';
    line += lvl;
    line += ' ';
    line += msg;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      bool quote = f.value.empty() || f.value.find_first_of(" \"=") != std::string_view::npos;
      if (quote) {
        AppendJsonString(line, f.value);
      } else {
        line += f.value;
      }
    }
    line += '\n';
  }
  GetWriter().Append(line, level >= LogLevel::kError);
}

void FlushLogs() { GetWriter().Flush(); }

}  // namespace drover
