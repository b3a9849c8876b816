#include "store/postgres/postgres_store.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "store/changes.h"
#include "store/group_commit.h"
#include "store/migrations.h"
#include "store/origin.h"
#include "store/postgres/connection.h"
#include "store/postgres/libpq_shim.h"

namespace drover::store {
namespace {

using postgres::Connection;
using postgres::PgTx;
using Clock = std::chrono::steady_clock;

constexpr const char* kChannel = "drover_changes";
constexpr int64_t kMigrationLock = 7400'0001;  // pg_advisory_lock key held while migrating
constexpr size_t kMaxPayload = 7000;           // NOTIFY payloads must stay under 8000 bytes

// Reconnect pacing: after a failure, wait `delay` before the next attempt, doubling to a cap.
class Backoff {
 public:
  bool Due() const { return Clock::now() >= next_; }
  void Failed() {
    next_ = Clock::now() + delay_;
    delay_ = std::min(delay_ * 2, std::chrono::milliseconds(2000));
  }
  void Succeeded() {
    delay_ = std::chrono::milliseconds(50);
    next_ = {};
  }
  std::chrono::milliseconds delay() const { return delay_; }

 private:
  std::chrono::milliseconds delay_{50};
  Clock::time_point next_{};
};

// "INDEX topic topic ...", or "INDEX *" when the topics do not fit (subscribers resync).
std::string EncodePayload(int64_t index, const std::vector<std::string>& topics) {
  std::string p = std::to_string(index);
  for (const auto& t : topics) {
    if (p.size() + t.size() + 1 > kMaxPayload) return std::to_string(index) + " *";
    p += ' ';
    p += t;
  }
  return p;
}

Change DecodePayload(std::string_view p) {
  Change c;
  auto sp = p.find(' ');
  std::from_chars(p.data(), p.data() + std::min(sp, p.size()), c.index);
  while (sp != std::string_view::npos) {
    p.remove_prefix(sp + 1);
    sp = p.find(' ');
    auto t = p.substr(0, sp);
    if (t == "*") {
      c.resync = true;
    } else if (!t.empty()) {
      c.topics.emplace_back(t);
    }
  }
  return c;
}

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, StoreOptions options)
      : url_(std::move(url)),
        options_(std::move(options)),
        queue_(options_.max_queue, options_.write_queue_timeout) {}
  ~PostgresStore() override { Close(); }

  Status Init() {
    auto c = Connection::Open(url_);
    if (!c.ok()) return c.status();
    writer_conn_ = std::move(*c);
    DROVER_RETURN_IF_ERROR(Migrate(*writer_conn_));
    writer_conn_->set_deadline(WriterDeadline());  // after migrations, which may take long
    PgTx tx(*writer_conn_);
    auto idx = tx.QueryInt("SELECT value FROM counters WHERE name = 'index'");
    if (!idx.ok()) return idx.status();
    last_index_ = *idx;
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return Status::Unavailable("cannot create an eventfd");
    // Listening before Open returns: no change committed after it is missed.
    std::unique_ptr<Connection> listen_conn;
    DROVER_RETURN_IF_ERROR(Listen(&listen_conn));
    listening_ = true;
    writer_ = std::thread([this] { WriterLoop(); });
    listener_ =
        std::thread([this, c = std::move(listen_conn)]() mutable { ListenLoop(std::move(c)); });
    return Status::Ok();
  }

  std::string_view Backend() const override { return "postgres"; }

  void Write(WriteFn fn, DoneFn done) override {
    queue_.Push(WithCurrentOrigin(std::move(fn)), std::move(done));
  }

  // Reads run in autocommit: one snapshot per statement, as PostgreSQL's READ COMMITTED gives
  // inside a transaction anyway, and no BEGIN/COMMIT round trips.
  Status Read(FunctionRef<Status(Tx&)> fn) override {
    auto conn = AcquireReader();
    if (!conn.ok()) return conn.status();
    Status s;
    {
      PgTx tx(**conn);
      s = fn(tx);
    }
    ReleaseReader(std::move(*conn));
    return s;
  }

  int64_t LastIndex() const override { return last_index_.load(std::memory_order_acquire); }

  Status Ping() override {
    if (!listening_.load()) return Status::Unavailable("not connected to PostgreSQL");
    return Read([](Tx& tx) { return tx.QueryInt("SELECT 1").status(); });
  }

  int Subscribe(ChangeFn fn) override { return changes_.Subscribe(std::move(fn)); }
  void Unsubscribe(int id) override { changes_.Unsubscribe(id); }

  void Close() override {
    if (!queue_.Close()) return;
    if (writer_.joinable()) writer_.join();
    stop_listener_ = true;
    if (wake_fd_ >= 0) {
      uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
    if (listener_.joinable()) listener_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    wake_fd_ = -1;
    std::lock_guard lock(readers_mu_);
    readers_.clear();
    writer_conn_.reset();
  }

 private:
  // Several servers may start at once: the first to take the advisory lock migrates, the
  // others then find nothing left to do.
  static Status Migrate(Connection& conn) {
    DROVER_RETURN_IF_ERROR(
        conn.ExecSimple(fmt::format("SELECT pg_advisory_lock({})", kMigrationLock).c_str()));
    PgTx tx(conn);
    Status s = ApplyMigrations(tx, "postgres", "BEGIN");
    (void)conn.ExecSimple(fmt::format("SELECT pg_advisory_unlock({})", kMigrationLock).c_str());
    return s;
  }

  // A batch the database does not answer within this is given up (its writes answered
  // Unavailable; one whose COMMIT was already sent may still apply: the client was told only
  // that it could not be confirmed).
  std::chrono::milliseconds WriterDeadline() const {
    return std::max(options_.read_timeout, options_.write_queue_timeout);
  }

  Result<std::unique_ptr<Connection>> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!readers_.empty()) {
        auto c = std::move(readers_.back());
        readers_.pop_back();
        return c;
      }
    }
    // After a failed connect, fail fast for a moment instead of making every request wait for
    // its own connect attempt (up to connect_timeout when the host does not answer).
    auto now = Clock::now().time_since_epoch().count();
    if (now < reader_retry_at_.load(std::memory_order_relaxed)) {
      return Status::Unavailable("the database is unavailable; retrying the connection");
    }
    auto c = Connection::Open(url_);
    if (c.ok()) (*c)->set_deadline(options_.read_timeout);
    if (!c.ok()) {
      reader_retry_at_ = now + std::chrono::duration_cast<Clock::duration>(kReaderRetry).count();
    }
    return c;
  }

  void ReleaseReader(std::unique_ptr<Connection> c) {
    if (c->broken()) return;  // dropped; the next read opens a fresh one
    std::lock_guard lock(readers_mu_);
    if (readers_.size() < static_cast<size_t>(options_.readers)) readers_.push_back(std::move(c));
  }

  // Ensures the writer has a live connection; false (with the reason) while the database is
  // unreachable, retrying no more often than the backoff allows.
  bool WriterConnected(Status* why) {
    if (writer_conn_ && !writer_conn_->broken()) return true;
    if (writer_conn_) {
      LogWarn("lost the PostgreSQL writer connection; reconnecting");
      writer_conn_.reset();
      writer_backoff_.Failed();  // the server likely just went away: do not hammer it
    }
    if (!writer_backoff_.Due()) {
      *why = Status::Unavailable("the database is unavailable; retrying the connection");
      return false;
    }
    auto c = Connection::Open(url_);
    if (!c.ok()) {
      writer_backoff_.Failed();
      *why = c.status();
      return false;
    }
    writer_conn_ = std::move(*c);
    writer_conn_->set_deadline(WriterDeadline());
    writer_backoff_.Succeeded();
    LogInfo("PostgreSQL writer connection re-established");
    return true;
  }

  void WriterLoop() {
    std::vector<PendingWrite> batch;
    std::vector<Status> results;
    while (queue_.Take(batch, options_.max_batch, [](size_t) { return true; })) {
      auto start = Clock::now();
      Status commit;
      int64_t max_index = 0;
      if (!WriterConnected(&commit)) {
        results.assign(batch.size(), commit);
      } else {
        // Predict the index (one round trip per batch) unless a prediction failed lately:
        // then another server is writing too, and locking first wastes less.
        bool predict = Clock::now() >= predict_again_at_;
        bool mispredicted = false;
        commit = CommitBatch(batch, results, predict, &mispredicted, &max_index);
        if (mispredicted) {
          predict_again_at_ = Clock::now() + std::chrono::seconds(1);
          commit = CommitBatch(batch, results, false, &mispredicted, &max_index);
        }
      }
      if (!commit.ok()) {
        if (commit.code() != Status::Code::kUnavailable) {
          LogError("PostgreSQL commit failed: {}", commit.ToString());
        }
        // Not committed, or (connection lost during COMMIT) not known to be: never a 2xx.
        for (auto& r : results) {
          r = Status::Unavailable("storage unavailable: " + commit.message())
                  .WithDetail(commit.detail());
        }
      } else if (max_index > 0) {
        RaiseLastIndex(max_index);
      }
      if (options_.on_commit) {
        options_.on_commit(
            {std::chrono::duration<double>(Clock::now() - start).count(), batch.size()});
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].done) batch[i].done(std::move(results[i]));
      }
      batch.clear();
    }
  }

  // Runs one batch in one transaction (group_commit.h). With `predict`, the optimistic attempt
  // sends everything in one pipeline: BEGIN, the counter's lock with a check that it still
  // holds the value this server predicted, the deferred statements, the index update, NOTIFY
  // and COMMIT. Otherwise BEGIN takes the counter's lock first (one round trip), then the
  // pipeline follows. Either way the counter is locked before any row.
  Status CommitBatch(std::vector<PendingWrite>& batch, std::vector<Status>& results, bool predict,
                     bool* mispredicted, int64_t* max_index) {
    PgTx tx(*writer_conn_, /*writable=*/true);
    bool first_attempt = true;
    // Deferred statements are pipelined in the optimistic attempt; the savepoint attempt
    // (after a failure) runs them one by one so each failure stays with its write.
    auto reset = [&] {
      tx.reset();
      tx.set_pipelining(first_attempt);
    };
    auto begin = [&]() -> Status {
      bool predicted = first_attempt && predict;
      first_attempt = false;
      if (!predicted) return tx.BeginLocked();
      tx.BeginPredicted(LastIndex());
      return Status::Ok();
    };
    // Nothing left in the pipeline: index, notification and COMMIT in one round trip of
    // simple queries.
    auto commit_batch = [&]() -> Status {
      std::string sql;
      if (tx.max_index() > 0) {
        sql += fmt::format("UPDATE counters SET value = {} WHERE name = 'index'; ", tx.max_index());
      }
      if ((tx.max_index() > 0 || !tx.topics().empty())) {
        sql += fmt::format("SELECT pg_notify('{}', {}); ", kChannel,
                           writer_conn_->Literal(EncodePayload(tx.max_index(), tx.topics())));
      }
      sql += "COMMIT";
      auto r = writer_conn_->ExecSimpleResult(sql);
      if (!r.ok()) return r.status();
      if (std::string_view(PQcmdStatus(r->get())) != "COMMIT") {
        return Status::Unavailable("PostgreSQL rolled the transaction back");
      }
      return Status::Ok();
    };
    // The same statements, sent behind the deferred ones in the same pipeline.
    auto flush = [&](std::vector<Status>& r, bool* committed) {
      if (!committed) return tx.Flush(r, nullptr, nullptr);
      std::vector<Connection::Queued> tail;
      if (tx.max_index() > 0) {
        tail.push_back(Connection::Copy("UPDATE counters SET value = ? WHERE name = 'index'",
                                        {tx.max_index()}));
      }
      if ((tx.max_index() > 0 || !tx.topics().empty())) {
        std::string payload = EncodePayload(tx.max_index(), tx.topics());
        tail.push_back(Connection::Copy("SELECT pg_notify(?, ?)", {kChannel, payload}));
      }
      tail.push_back(Connection::Copy("COMMIT", {}));
      return tx.Flush(r, &tail, committed);
    };
    auto on_write = [&](size_t i) { tx.set_current_write(i); };
    // Statements still queued belong to the transaction being abandoned: never sent.
    auto rollback = [&] {
      tx.DropQueued();
      return tx.Exec("ROLLBACK").status();
    };
    Status s =
        RunBatch(tx, batch, results, {begin, reset, commit_batch, rollback, on_write, flush});
    *mispredicted = tx.mispredicted();
    *max_index = s.ok() ? tx.max_index() : 0;
    return s;
  }

  void RaiseLastIndex(int64_t index) {
    int64_t cur = last_index_.load(std::memory_order_acquire);
    while (index > cur && !last_index_.compare_exchange_weak(cur, index)) {
    }
  }

  // Receives every server's change notifications (this one's too) and publishes them. After a
  // reconnect, changes may have been missed: publishes a resync with the current index.
  void ListenLoop(std::unique_ptr<Connection> conn) {
    Backoff backoff;
    while (!stop_listener_) {
      if (!conn) {
        if (!Listen(&conn).ok()) {
          listening_ = false;
          backoff.Failed();
          WaitWake(static_cast<int>(backoff.delay().count()));
          continue;
        }
        backoff.Succeeded();
        listening_ = true;
        LogInfo("PostgreSQL listener re-established");
        changes_.Publish({LastIndex(), {}, true});
      }
      if (!WaitReadable(PQsocket(conn->raw()))) continue;
      if (!PQconsumeInput(conn->raw()) || conn->broken()) {
        LogWarn("lost the PostgreSQL listener connection; reconnecting");
        conn.reset();
        listening_ = false;
        continue;
      }
      while (PGnotify* n = PQnotifies(conn->raw())) {
        Change c = DecodePayload(n->extra);
        PQfreemem(n);
        RaiseLastIndex(c.index);
        c.index = LastIndex();
        changes_.Publish(c);
      }
    }
  }

  Status Listen(std::unique_ptr<Connection>* out) {
    auto c = Connection::Open(url_);
    if (!c.ok()) return c.status();
    DROVER_RETURN_IF_ERROR((*c)->ExecSimple(fmt::format("LISTEN {}", kChannel).c_str()));
    // Commits made while not listening: catch up on the index (after LISTEN, so none is lost).
    PgTx tx(**c);
    auto idx = tx.QueryInt("SELECT value FROM counters WHERE name = 'index'");
    if (!idx.ok()) return idx.status();
    RaiseLastIndex(*idx);
    *out = std::move(*c);
    return Status::Ok();
  }

  // Waits until `fd` is readable or Close wakes us; false when woken or on timeout.
  bool WaitReadable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n <= 0 || (fds[1].revents & POLLIN)) return false;
    return true;
  }

  void WaitWake(int ms) {
    pollfd fd{wake_fd_, POLLIN, 0};
    ::poll(&fd, 1, ms);
  }

  const std::string url_;
  const StoreOptions options_;
  std::atomic<int64_t> last_index_{0};
  ChangeHub changes_;

  std::thread writer_;
  std::unique_ptr<Connection> writer_conn_;  // writer thread only (after Init)
  Backoff writer_backoff_;                   // writer thread only
  Clock::time_point predict_again_at_{};     // writer thread only
  WriteQueue queue_;

  std::thread listener_;
  std::atomic<bool> stop_listener_{false};
  std::atomic<bool> listening_{false};
  int wake_fd_ = -1;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> readers_;  // GUARDED_BY(readers_mu_)
  static constexpr std::chrono::milliseconds kReaderRetry{250};
  std::atomic<Clock::rep> reader_retry_at_{0};  // steady-clock ticks: no connect attempts before
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const StoreOptions& options) {
  if (std::string error; !postgres::LoadLibPq(&error)) return Status::Unavailable(error);
  auto store = std::make_unique<PostgresStore>(url, options);
  DROVER_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace drover::store
