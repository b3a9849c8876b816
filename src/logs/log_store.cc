#include "logs/log_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>

namespace drover::logs {
namespace {

constexpr int64_t kMaxN = std::numeric_limits<int64_t>::max();
constexpr int kScanChunk = 1000;
constexpr int kPruneChunk = 5000;  // lines deleted per transaction

// A line's share of its tenant's cap: its text and what is stored beside it.
int64_t CostOf(const LogLine& l, size_t names) {
  return static_cast<int64_t>(l.line.size() + l.stream.size() + l.trace_id.size() + names + 32);
}

constexpr std::string_view kColumns =
    "SELECT seq, n, at, environment, instance, stream, line, trace_id FROM log_lines WHERE"
    " tenant = ?";
// The residual filters every read has (parameters: instance twice, trace twice, since, until,
// upto).
constexpr std::string_view kFilters =
    " AND (? = '' OR instance = ?) AND (? = '' OR trace_id = ?) AND at >= ? AND at < ?"
    " AND seq <= ?";

StoredLine ReadLine(const store::Row& r) {
  StoredLine s;
  s.pos = {r.Int(0), r.Int(1)};
  s.at_ms = r.Int(2);
  s.environment = r.String(3);
  s.instance = r.String(4);
  s.stream = r.String(5);
  s.line = r.String(6);
  s.trace_id = r.String(7);
  return s;
}

}  // namespace

std::string Position::ToString() const {
  // After every line of batch `seq` (where a read that saw all of it goes on): the bare seq.
  return n == kMaxN ? std::to_string(seq) : fmt::format("{}.{}", seq, n);
}

std::optional<Position> Position::Parse(std::string_view s) {
  Position p;
  size_t dot = s.find('.');
  std::string_view a = s.substr(0, dot);
  auto [pa, ea] = std::from_chars(a.data(), a.data() + a.size(), p.seq);
  if (ea != std::errc() || pa != a.data() + a.size() || p.seq < 0) return std::nullopt;
  if (dot == std::string_view::npos) {
    p.n = kMaxN;  // a bare index: after everything of that batch
    return p;
  }
  std::string_view b = s.substr(dot + 1);
  auto [pb, eb] = std::from_chars(b.data(), b.data() + b.size(), p.n);
  if (eb != std::errc() || pb != b.data() + b.size() || p.n < 0) return std::nullopt;
  return p;
}

LogStore::LogStore(store::Store& store, metrics::Registry& registry, LogOptions options)
    : store_(store),
      o_(options),
      stored_(registry.Counter("drover_log_lines_total", "Log lines stored by this server.")),
      dropped_(registry.CounterFamily(
          "drover_log_lines_dropped_total",
          "Log lines dropped: the server's buffer was full (buffer), a shipper's was (agent), or "
          "their write failed (store).",
          {"reason"})),
      batch_seconds_(registry.Histogram("drover_log_write_duration_seconds",
                                        "Time to commit one batch of log lines.",
                                        metrics::LatencyBounds())) {
  for (std::string_view r : {"buffer", "agent", "store"}) dropped_.With({r});
}

LogStore::~LogStore() { Stop(); }

void LogStore::Start() {
  std::lock_guard lock(mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] { WriterLoop(); });
}

void LogStore::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

bool LogStore::Append(const std::string& tenant, const std::string& environment,
                      const std::string& instance, std::vector<LogLine> lines,
                      std::function<void(Status)> committed) {
  size_t names = tenant.size() + environment.size() + instance.size();
  size_t bytes = 0;
  for (const auto& l : lines) bytes += static_cast<size_t>(CostOf(l, names));
  std::shared_ptr<Ack> ack;
  if (committed && !lines.empty()) ack = std::make_shared<Ack>(Ack{std::move(committed), {}});
  {
    std::lock_guard lock(mu_);
    // All or none: a sender told "none" sends the same batch again later.
    if (pending_.size() + lines.size() > o_.buffer_lines ||
        pending_bytes_ + bytes > o_.buffer_bytes) {
      dropped_.With({"buffer"}).Inc(lines.size());
      return false;
    }
    pending_bytes_ += bytes;
    for (auto& l : lines) pending_.push_back({tenant, environment, instance, std::move(l), ack});
    if (!lines.empty()) pending_.back().last = true;
    appended_ += lines.size();
  }
  if (!lines.empty()) {
    wake_.notify_one();
  } else if (committed) {
    committed(Status::Ok());  // nothing to wait for
  }
  return true;
}

void LogStore::CountDropped(std::string_view reason, uint64_t n) {
  if (n) dropped_.With({reason}).Inc(n);
}

size_t LogStore::buffered() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

bool LogStore::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  uint64_t target = appended_;
  return flushed_.wait_for(lock, timeout, [&] {
    return written_ >= target || !writer_.joinable();
  }) && written_ >= target;
}

void LogStore::WriterLoop() {
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // No wait to gather lines: senders wait for their commit, and the lines that arrive
      // while one batch commits make the next.
      wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) return;
      size_t n = std::min(pending_.size(), o_.batch_lines);
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        pending_bytes_ -= static_cast<size_t>(
            CostOf(pending_.front().line, pending_.front().tenant.size() +
                                              pending_.front().environment.size() +
                                              pending_.front().instance.size()));
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    auto started = std::chrono::steady_clock::now();
    Status s = WriteBatch(batch);
    batch_seconds_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (s.ok()) {
      stored_.Inc(batch.size());
    } else {
      // The store is away: senders are told and send again; lines nobody waits for are lost
      // (a log flood must not grow memory), counted.
      uint64_t lost = 0;
      for (auto& p : batch) {
        if (p.ack && p.ack->status.ok()) p.ack->status = Status::Unavailable(s.message());
        if (!p.ack) ++lost;
      }
      if (lost) dropped_.With({"store"}).Inc(lost);
    }
    for (auto& p : batch) {
      if (p.last && p.ack) p.ack->committed(p.ack->status);
    }
    {
      std::lock_guard lock(mu_);
      written_ += batch.size();
    }
    flushed_.notify_all();
    if (!s.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status LogStore::WriteBatch(std::vector<Pending>& batch) {
  return store::WriteSync(store_, [&batch](store::Tx& tx) -> Status {
    // The counter row stays locked until the commit (on PostgreSQL, after the change index row
    // every write locks first: no lock-order deadlock), so batches commit in seq order.
    auto seq = tx.QueryInt(
        "UPDATE counters SET value = value + 1 WHERE name = 'log_seq'"
        " RETURNING value");
    if (!seq.ok()) return seq.status();
    std::map<std::string, std::pair<int64_t, int64_t>> usage;  // tenant: bytes, lines
    int64_t n = 0;
    for (const auto& p : batch) {
      int64_t bytes = CostOf(p.line, p.tenant.size() + p.environment.size() + p.instance.size());
      DROVER_RETURN_IF_ERROR(
          tx.Defer("INSERT INTO log_lines (tenant, environment, seq, n, at, instance, stream, line,"
                   " trace_id, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   {p.tenant, p.environment, *seq, n++, p.line.at_ms, p.instance, p.line.stream,
                    p.line.line, p.line.trace_id, bytes},
                   nullptr));
      auto& u = usage[p.tenant];
      u.first += bytes;
      u.second += 1;
    }
    for (const auto& [tenant, u] : usage) {
      DROVER_RETURN_IF_ERROR(tx.Defer(
          "INSERT INTO log_usage (tenant, bytes, lines) VALUES (?, ?, ?) ON CONFLICT (tenant)"
          " DO UPDATE SET bytes = log_usage.bytes + excluded.bytes, lines = log_usage.lines +"
          " excluded.lines",
          {tenant, u.first, u.second}, nullptr));
    }
    return tx.Notify(kTopic);
  });
}

Result<LogPage> LogStore::Read(const LogQuery& q) {
  LogPage page;
  // Lines up to the committed log seq (read first: every batch up to it has committed, so a
  // follower going on after it never skips a line).
  int64_t upto = q.upto_seq;
  if (upto <= 0) {
    Status s = store_.Read([&](store::Tx& tx) {
      auto v = tx.QueryInt("SELECT value FROM counters WHERE name = 'log_seq'");
      if (!v.ok()) return v.status();
      upto = *v;
      return Status::Ok();
    });
    if (!s.ok()) return s;
  }
  const int64_t until = q.until_ms > 0 ? q.until_ms : kMaxN;
  const bool forward = q.after.has_value() || q.since_ms > 0;
  // The index to read by: an environment's lines, a trace's, or the tenant's.
  std::string where;
  std::string key;
  if (!q.environment.empty()) {
    where = " AND environment = ?";
    key = q.environment;
  } else if (!q.trace_id.empty()) {
    where = " AND trace_id = ? AND trace_id <> ''";  // the partial index's own term: used
    key = q.trace_id;
  } else {
    where = " AND ? = ''";
  }
  std::string sql = std::string(kColumns) + where + std::string(kFilters);
  sql += forward ? " AND (seq > ? OR (seq = ? AND n > ?)) ORDER BY seq, n LIMIT ?"
                 : " AND (seq < ? OR (seq = ? AND n < ?)) ORDER BY seq DESC, n DESC LIMIT ?";
  Position cursor = q.after.value_or(forward ? Position{0, -1} : Position{upto, kMaxN});
  if (!forward && cursor.seq > upto) cursor = {upto, kMaxN};
  int scanned = 0;
  bool exhausted = false;
  while (static_cast<int>(page.lines.size()) < q.limit && scanned < kMaxScan) {
    int want = q.q ? kScanChunk : q.limit - static_cast<int>(page.lines.size());
    std::vector<StoredLine> chunk;
    Status s = store_.Read([&](store::Tx& tx) {
      return tx.Query(sql,
                      {q.tenant, key, q.instance, q.instance, q.trace_id, q.trace_id, q.since_ms,
                       until, upto, cursor.seq, cursor.seq, cursor.n, int64_t{want}},
                      [&](const store::Row& r) { chunk.push_back(ReadLine(r)); });
    });
    if (!s.ok()) return s;
    for (auto& l : chunk) {
      cursor = l.pos;
      ++scanned;
      if (q.q && !q.q->Matches(l.line)) continue;
      page.lines.push_back(std::move(l));
      if (static_cast<int>(page.lines.size()) == q.limit) break;
    }
    if (static_cast<int>(chunk.size()) < want) {
      exhausted = true;
      break;
    }
  }
  if (!forward) {
    std::reverse(page.lines.begin(), page.lines.end());
    // A tail goes on after the newest line there is (up to `upto`).
    page.next = page.lines.empty() ? Position{upto, kMaxN} : page.lines.back().pos;
    return page;
  }
  if (exhausted) cursor = std::max(cursor, Position{upto, kMaxN});
  page.next = cursor;
  return page;
}

Status LogStore::Prune(int64_t now_ms) {
  std::vector<std::string> tenants;
  DROVER_RETURN_IF_ERROR(store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT tenant FROM log_usage", {},
                    [&](const store::Row& r) { tenants.push_back(r.String(0)); });
  }));
  const int64_t cutoff = now_ms - o_.retention_ms;
  for (const auto& tenant : tenants) {
    // Chunks of the oldest lines: each deletes those past the retention and, while the tenant
    // is over its cap, the oldest until it is at 90 % of it.
    for (int round = 0; round < 1000; ++round) {
      bool more = false;
      Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
        more = false;
        auto bytes = tx.QueryInt("SELECT bytes FROM log_usage WHERE tenant = ?", {tenant});
        if (!bytes.ok()) return bytes.status();
        int64_t excess =
            *bytes > o_.max_bytes_per_tenant ? *bytes - o_.max_bytes_per_tenant * 9 / 10 : 0;
        struct Old {
          Position pos;
          int64_t at_ms, bytes;
        };
        std::vector<Old> oldest;
        DROVER_RETURN_IF_ERROR(tx.Query(
            "SELECT seq, n, at, bytes FROM log_lines WHERE tenant = ? ORDER BY seq, n LIMIT ?",
            {tenant, int64_t{kPruneChunk}}, [&](const store::Row& r) {
              oldest.push_back({{r.Int(0), r.Int(1)}, r.Int(2), r.Int(3)});
            }));
        // The oldest lines go while they are past the retention or the tenant is over its cap.
        std::optional<Position> last;
        int64_t freed = 0, lines = 0;
        for (const auto& o : oldest) {
          if (o.at_ms >= cutoff && freed >= excess) break;
          last = o.pos;
          freed += o.bytes;
          ++lines;
        }
        if (!last) return Status::Ok();
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM log_lines WHERE tenant = ? AND (seq < ? OR (seq = ? AND n <= ?))",
                    {tenant, last->seq, last->seq, last->n})
                .status());
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE log_usage SET bytes = bytes - ?, lines = lines - ? WHERE tenant = ?",
                    {freed, lines, tenant})
                .status());
        more = lines == kPruneChunk;
        return Status::Ok();
      });
      if (!s.ok()) return s;
      if (!more) break;
    }
  }
  return Status::Ok();
}

}  // namespace drover::logs
