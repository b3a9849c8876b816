#include "agent/task_worker.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/trace.h"

namespace drover::agent {
namespace {

namespace json = boost::json;

// Inputs larger than this go only to the file named by DROVER_INPUT_FILE: an environment
// string is limited (128 KiB on Linux) and large ones slow every exec.
constexpr size_t kMaxEnvInput = 64 * 1024;

std::string ReadTail(const std::string& path, size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0));
  size_t from = size > max ? size - max : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// The last line of `text` that is JSON, or "null".
std::string LastJsonLine(const std::string& text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = text.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string_view line(text.data() + start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) {
      std::error_code ec;
      auto v = json::parse(line, ec);
      if (!ec) return ToJson(v);
    }
    if (start == 0) break;
    end = start - 1;
  }
  return "null";
}

// The last `n` lines of `text`, for an error message.
std::string LastLines(const std::string& text, int n) {
  size_t pos = text.size();
  while (pos > 0 && (text[pos - 1] == '\n')) --pos;
  size_t end = pos;
  for (int i = 0; i < n && pos > 0; ++i) {
    size_t nl = text.rfind('\n', pos - 1);
    pos = nl == std::string::npos ? 0 : nl;
  }
  return text.substr(pos == 0 ? 0 : pos + 1, end - (pos == 0 ? 0 : pos + 1));
}

}  // namespace

struct TaskWorker::Impl {
  explicit Impl(TaskWorkerOptions o) : opts(std::move(o)) {}
  TaskWorkerOptions opts;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::string> held;  // receipt -> queue path, tasks under way (mu)
  std::vector<client::Client*> clients;     // to interrupt their long polls on Stop (mu)

  client::Client NewClient(std::chrono::milliseconds timeout) {
    return client::Client({.addr = opts.server, .token = opts.token(), .timeout = timeout});
  }

  void Slot(int n) {
    std::string dir = opts.work_dir + "/tasks";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto c = NewClient(opts.wait + std::chrono::seconds(20));
    {
      std::lock_guard lock(mu);
      clients.push_back(&c);
    }
    std::string receive =
        fmt::format(R"({{"max":1,"wait":"{}s","visibility_timeout":"{}s"}})", opts.wait.count(),
                    std::chrono::duration_cast<std::chrono::seconds>(opts.visibility).count());
    while (!stop) {
      auto r = c.Do("POST", "/v1/queues/" + opts.queue + "/receive", receive,
                    {{"Content-Type", "application/json"}});
      if (stop) break;
      if (!r.ok() || r->status != 200) {
        LogWarn("worker: receiving from {}: {}", opts.queue,
                r.ok() ? fmt::format("HTTP {} {}", r->status, r->body.substr(0, 200))
                       : r.status().message());
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(2), [&] { return stop.load(); });
        continue;
      }
      std::error_code jec;
      auto v = json::parse(r->body, jec);
      if (jec || !v.is_object() || !v.as_object().contains("messages")) continue;
      for (const auto& m : v.at("messages").as_array()) {
        RunTask(c, m.as_object(), dir + "/" + std::to_string(n));
      }
    }
    std::lock_guard lock(mu);
    std::erase(clients, &c);
  }

  void RunTask(client::Client& c, const json::object& m, const std::string& base) {
    std::string receipt(m.at("receipt").as_string());
    int64_t receive_count = m.at("receive_count").as_int64();
    std::error_code ec;
    auto body = json::parse(m.at("body").as_string(), ec);
    auto ack = [&] { (void)c.Do("DELETE", "/v1/queues/" + opts.queue + "/messages/" + receipt); };
    if (ec || !body.is_object() || !body.as_object().contains("execution")) {
      LogWarn("worker: a message on {} is not a workflow task; leaving it", opts.queue);
      return;
    }
    const auto& task = body.as_object();
    auto text = [&](std::string_view k) {
      const auto* x = task.if_contains(k);
      return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    int64_t first = task.contains("attempt") && task.at("attempt").is_int64()
                        ? task.at("attempt").as_int64()
                        : 1;
    int64_t attempt = first + receive_count - 1;
    std::string execution = text("execution"), step = text("step"), command = text("command");
    std::string report_path = "/v1/executions/" + execution + "/steps/" + step;
    std::string input = task.contains("input") ? ToJson(task.at("input")) : "null";
    if (command.empty()) {
      auto r = c.Do(
          "POST", report_path + "/fail",
          fmt::format(R"({{"attempt":{},"error":"the task has no command","retryable":false}})",
                      attempt),
          {{"Content-Type", "application/json"}});
      if (r.ok() && (r->status == 200 || r->status == 409)) ack();
      return;
    }
    {
      std::lock_guard lock(mu);
      held[receipt] = opts.queue;
    }
    std::ofstream(base + ".in", std::ios::trunc) << input;
    std::ofstream(base + ".out", std::ios::trunc);
    std::ofstream(base + ".log", std::ios::trunc);
    ProcessSpec spec;
    spec.argv = {"sh", "-c", command};
    spec.cwd = opts.checkout_dir ? opts.checkout_dir() : "";
    if (spec.cwd.empty()) spec.cwd = opts.work_dir;
    spec.env = opts.env;
    if (input.size() <= kMaxEnvInput) spec.env.push_back("DROVER_INPUT=" + input);
    spec.env.push_back("DROVER_INPUT_FILE=" + base + ".in");
    spec.env.push_back("DROVER_EXECUTION=" + execution);
    spec.env.push_back("DROVER_WORKFLOW=" + text("workflow"));
    spec.env.push_back("DROVER_STEP=" + step);
    spec.env.push_back("DROVER_ATTEMPT=" + std::to_string(attempt));
    // The execution's trace: the command's own calls can carry it on (W3C TRACEPARENT).
    std::string traceparent = text("traceparent");
    if (ValidTraceparent(traceparent)) spec.env.push_back("TRACEPARENT=" + traceparent);
    spec.log_path = base + ".log";
    spec.stdin_path = base + ".in";
    spec.stdout_path = base + ".out";
    spec.deadline = std::chrono::steady_clock::now() + opts.task_timeout;
    spec.grace = opts.kill_grace;
    spec.stop = &stop;
    ProcessResult result = RunProcess(spec);
    {
      std::lock_guard lock(mu);
      held.erase(receipt);
    }
    if (result.stopped) return;  // the agent is stopping: the message comes back to someone
    if (opts.ship_log)
      opts.ship_log(ReadTail(base + ".log", 1 << 20), std::string(TraceIdOf(traceparent)));
    Result<client::Response> r = Status::Unavailable("not sent");
    if (result.error.empty() && result.exit_code == 0) {
      std::string output = LastJsonLine(ReadTail(base + ".out", 1 << 20));
      r = c.Do("POST", report_path + "/complete",
               fmt::format(R"({{"attempt":{},"output":{}}})", attempt, output),
               {{"Content-Type", "application/json"}});
    } else {
      std::string why =
          !result.error.empty() ? result.error
          : result.timed_out
              ? fmt::format(
                    "timed out after {} s",
                    std::chrono::duration_cast<std::chrono::seconds>(opts.task_timeout).count())
              : fmt::format("exit {}", result.exit_code);
      std::string tail = LastLines(ReadTail(base + ".log", 4096), 5);
      if (!tail.empty()) why += ": " + tail;
      std::string b = fmt::format(R"({{"attempt":{},"retryable":true,"error":)", attempt);
      AppendJsonString(b, why);
      b += '}';
      r = c.Do("POST", report_path + "/fail", b, {{"Content-Type", "application/json"}});
    }
    // Reported (or refused as stale): done with the message. Not reported (the server is away):
    // it comes back after its visibility timeout and runs again.
    if (r.ok() && (r->status == 200 || r->status == 409 || r->status == 404)) {
      ack();
    } else {
      LogWarn("worker: reporting {} step {} attempt {}: {}", execution, step, attempt,
              r.ok() ? fmt::format("HTTP {}", r->status) : r.status().message());
    }
  }

  // Extends the visibility of tasks still running, every third of it.
  void Keeper() {
    auto c = NewClient(std::chrono::seconds(10));
    auto secs = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(opts.visibility).count());
    std::unique_lock lock(mu);
    while (!stop) {
      cv.wait_for(lock, opts.visibility / 3, [&] { return stop.load(); });
      if (stop) break;
      auto now = held;
      lock.unlock();
      for (const auto& [receipt, queue] : now) {
        (void)c.Do("POST", "/v1/queues/" + queue + "/messages/" + receipt + "/visibility",
                   fmt::format(R"({{"timeout":"{}s"}})", secs),
                   {{"Content-Type", "application/json"}});
      }
      lock.lock();
    }
  }
};

TaskWorker::TaskWorker(TaskWorkerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}

TaskWorker::~TaskWorker() { Stop(); }

void TaskWorker::Start() {
  if (!impl_->threads.empty()) return;
  LogInfo("worker: taking tasks from queue {} ({} at once)", impl_->opts.queue,
          impl_->opts.concurrency);
  for (int i = 0; i < std::max(1, impl_->opts.concurrency); ++i) {
    impl_->threads.emplace_back([im = impl_, i] { im->Slot(i); });
  }
  impl_->threads.emplace_back([im = impl_] { im->Keeper(); });
}

void TaskWorker::Stop() {
  impl_->stop = true;
  {
    std::lock_guard lock(impl_->mu);
    for (auto* c : impl_->clients) c->Interrupt();
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

}  // namespace drover::agent
