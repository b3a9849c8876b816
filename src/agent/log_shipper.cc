#include "agent/log_shipper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>

#include "client/client.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/text.h"

namespace drover::agent {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxLine = 16384;  // longer lines are cut into pieces of this size

// The trace id in a run log's name ("<ms>-<run>-<32 hex>.log"), or "".
std::string TraceOfRunLog(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  if (name.size() < 37 || !name.ends_with(".log") || name[name.size() - 37] != '-') return "";
  std::string id = name.substr(name.size() - 36, 32);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
  }
  return id;
}

// `text` split into lines as a tailer reads them: '\r' before '\n' dropped, long lines cut.
template <class Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    do {
      fn(line.substr(0, kMaxLine));
      line.remove_prefix(std::min(line.size(), kMaxLine));
    } while (!line.empty());
  }
}
}  // namespace

struct LogShipper::Tail {
  std::string path, stream;
  bool given = false;  // a --ship-log file: kept while missing, read when it appears
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t offset = 0;
  std::string carry;     // the last line, not ended yet
  std::string trace_id;  // of every line (a run log's run)

  ~Tail() { Close(); }
  void Close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  // Opens the file at `path`, at its end or start.
  bool Open(bool at_end) {
    Close();
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      Close();
      return false;
    }
    dev = st.st_dev;
    ino = st.st_ino;
    offset = at_end ? st.st_size : 0;
    ::lseek(fd, offset, SEEK_SET);
    carry.clear();
    return true;
  }
};

LogShipper::LogShipper(ShipperOptions options) : o_(std::move(options)) {}

LogShipper::~LogShipper() { Stop(std::chrono::milliseconds(0)); }

void LogShipper::Start() {
  if (thread_.joinable()) return;
  for (const auto& f : o_.files) {
    auto t = std::make_unique<Tail>();
    t->path = f;
    t->stream = fs::path(f).filename().string();
    if (t->stream.empty()) t->stream = "file";
    t->given = true;
    t->Open(/*at_end=*/true);
    tails_[f] = std::move(t);
  }
  Discover(/*at_start=*/true);
  thread_ = std::thread([this] { Loop(); });
}

void LogShipper::Stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    drain_until_ = std::chrono::steady_clock::now() + drain;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogShipper::Discover(bool at_start) {
  if (o_.run_logs_dir.empty()) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.run_logs_dir, ec)) {
    std::string path = e.path().string();
    if (tails_.count(path) || !e.is_regular_file(ec)) continue;
    auto t = std::make_unique<Tail>();
    t->path = path;
    t->stream = "run";
    t->trace_id = TraceOfRunLog(path);
    if (t->Open(at_start)) tails_[path] = std::move(t);
  }
}

void LogShipper::Append(const std::string& stream, std::string_view text,
                        const std::string& trace_id) {
  int64_t at = ToUnixMillis(SystemClock::Get().Now());
  std::lock_guard lock(mu_);
  ForEachLine(text, [&](std::string_view line) {
    if (incoming_.size() >= o_.max_pending) {
      ++incoming_lost_;
      return;
    }
    incoming_.push_back({at, stream, ToValidText(line), trace_id});
  });
}

bool LogShipper::ReadAll() {
  {
    std::lock_guard lock(mu_);
    for (auto& l : incoming_) pending_.push_back(std::move(l));
    incoming_.clear();
    lost_ += incoming_lost_;
    dropped_ += incoming_lost_;
    incoming_lost_ = 0;
  }
  char buf[65536];
  auto now_ms = [] { return ToUnixMillis(SystemClock::Get().Now()); };
  auto emit = [&](Tail& t, std::string_view raw) {
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    pending_.push_back({now_ms(), t.stream, ToValidText(raw), t.trace_id});
  };
  for (auto it = tails_.begin(); it != tails_.end();) {
    Tail& t = *it->second;
    if (t.fd < 0 && t.given) t.Open(/*at_end=*/false);  // appeared (again): from its start
    // The open file to its end (even after a rename: what was written before it is read).
    while (t.fd >= 0 && pending_.size() < o_.max_pending) {
      ssize_t n = ::read(t.fd, buf, sizeof buf);
      if (n <= 0) break;
      t.offset += n;
      std::string_view data(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n', start)) {
        if (t.carry.empty()) {
          emit(t, data.substr(start, nl - start));
        } else {
          t.carry.append(data.substr(start, nl - start));
          emit(t, t.carry);
          t.carry.clear();
        }
        start = nl + 1;
      }
      t.carry.append(data.substr(start));
      while (t.carry.size() >= kMaxLine) {
        emit(t, std::string_view(t.carry).substr(0, kMaxLine));
        t.carry.erase(0, kMaxLine);
      }
    }
    if (pending_.size() >= o_.max_pending) return true;  // the rest on a later round
    // At the end: has the path been renamed, replaced, truncated or removed?
    struct stat st {};
    bool exists = ::stat(t.path.c_str(), &st) == 0;
    if (t.fd >= 0 && exists && st.st_dev == t.dev && st.st_ino == t.ino) {
      if (st.st_size < t.offset) {  // truncated (copytruncate): from the start again
        ::lseek(t.fd, 0, SEEK_SET);
        t.offset = 0;
        t.carry.clear();
      }
      ++it;
      continue;
    }
    if (!t.carry.empty()) {
      emit(t, t.carry);  // the old file's last line, not ended
      t.carry.clear();
    }
    if (exists) {
      t.Open(/*at_end=*/false);  // a new file under the name: from its start
      ++it;
    } else if (t.given) {
      t.Close();  // read again when it appears
      ++it;
    } else {
      it = tails_.erase(it);  // a run log removed
    }
  }
  return false;
}

LogShipper::Sent LogShipper::Send() {
  std::string id = o_.instance_id ? o_.instance_id() : "";
  if (id.empty() || o_.server.empty()) return Sent::kLater;
  size_t n = 0, bytes = 0;
  std::string body = "{\"lines\":[";
  while (n < pending_.size() && n < o_.batch_lines && bytes < o_.batch_bytes) {
    const Line& l = pending_[n];
    if (n) body += ',';
    size_t before = body.size();
    body += "{\"at\":\"" + FormatRfc3339(FromUnixMillis(l.at_ms)) + "\"";
    AppendJsonField(body, "stream", l.stream);
    AppendJsonField(body, "line", l.text);
    if (!l.trace_id.empty()) AppendJsonField(body, "trace_id", l.trace_id);
    body += '}';
    bytes += body.size() - before;
    ++n;
  }
  body += "],\"dropped\":" + std::to_string(lost_) + "}";
  // One kept-alive connection (a new one when the key changed: a rejoin).
  std::string token = o_.token ? o_.token() : "";
  if (!client_ || client_->options().token != token) {
    client_ = std::make_unique<client::Client>(
        client::Options{o_.server, token, std::chrono::seconds(10)});
  }
  auto r = client_->Do("POST", "/v1/instances/" + id + "/logs", body);
  if (r.ok() && r->status == 429) return Sent::kBusy;  // its buffer is full: again shortly
  if (!r.ok() || r->status >= 500 || r->status == 401 || r->status == 404) {
    return Sent::kLater;  // the server is away, or this instance is not (yet) known
  }
  lost_ = 0;
  if (r->status == 202) {
    shipped_ += n;
  } else {
    // Refused (a bug on one side): these lines cannot be sent as they are.
    LogWarn("the server refused {} log lines: {}", n, client::Client::ToStatus(*r).message());
    dropped_ += n;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
  return Sent::kSent;
}

void LogShipper::Loop() {
  auto backoff = o_.poll;
  for (;;) {
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    if (stopping && std::chrono::steady_clock::now() >= drain_until_) break;
    Discover(false);
    bool full = ReadAll();
    Sent sent = Sent::kSent;
    while (!pending_.empty() && sent == Sent::kSent) sent = Send();
    if (stopping && !full && pending_.empty()) break;
    if (full && sent == Sent::kSent) continue;  // a burst: read on at once
    // Otherwise poll; soon again when the server's buffer was full, less often while the
    // server is away.
    if (sent == Sent::kBusy) {
      backoff = std::chrono::milliseconds(50);
    } else {
      backoff =
          sent == Sent::kSent ? o_.poll : std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, backoff, [&] { return stopping_; });
  }
}

}  // namespace drover::agent
