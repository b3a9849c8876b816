#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "store/migrations.h"
#include "store/sqlite/connection.h"

namespace drover::store {
namespace {

using sqlite::Connection;
using sqlite::SqliteTx;

struct PendingWrite {
  WriteFn fn;
  DoneFn done;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, StoreOptions options, int lock_fd)
      : path_(std::move(path)), options_(std::move(options)), lock_fd_(lock_fd) {}
  ~SqliteStore() override { Close(); }

  Status Init() {
    auto w = Connection::Open(path_, options_.sqlite_sync_normal ? "NORMAL" : "FULL");
    if (!w.ok()) return w.status();
    writer_conn_ = std::move(*w);
    DROVER_RETURN_IF_ERROR(Migrate());
    SqliteTx tx(*writer_conn_);
    auto idx = tx.QueryInt("SELECT value FROM counters WHERE name = 'index'");
    if (!idx.ok()) return idx.status();
    last_index_ = *idx;
    writer_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  std::string_view Backend() const override { return "sqlite"; }

  void Write(WriteFn fn, DoneFn done) override {
    {
      std::lock_guard lock(mu_);
      if (!closing_ && queue_.size() < options_.max_queue) {
        queue_.push_back({std::move(fn), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    done(Status::Unavailable(closing_ ? "server is shutting down" : "write queue is full"));
  }

  Status Read(FunctionRef<Status(Tx&)> fn) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    Reader& r = **reader;
    SqliteTx tx(*r.conn);
    // A read transaction stays open while no commit has happened since it began: a snapshot
    // that is still current needs no new WAL read lock (two fcntl calls per read otherwise).
    uint64_t seq = commit_seq_.load(std::memory_order_acquire);
    Status s;
    if (r.in_txn && r.seq != seq) s = EndRead(r);
    if (s.ok() && !r.in_txn) {
      s = tx.Exec("BEGIN").status();
      r.in_txn = s.ok();
      r.seq = seq;
    }
    if (s.ok()) s = fn(tx);
    if (!s.ok() && r.in_txn) (void)EndRead(r);  // never keep a snapshot after an error
    ReleaseReader(std::move(*reader));
    return s;
  }

  int64_t LastIndex() const override { return last_index_.load(std::memory_order_acquire); }

  Status Ping() override {
    return Read([](Tx& tx) { return tx.QueryInt("SELECT 1").status(); });
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      cv_.notify_all();
    }
    if (writer_.joinable()) writer_.join();
    std::lock_guard lock(readers_mu_);
    readers_.clear();
    writer_conn_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

 private:
  Status Migrate() {
    DROVER_RETURN_IF_ERROR(writer_conn_->ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
        "NOT NULL, applied_at BIGINT NOT NULL)"));
    SqliteTx tx(*writer_conn_);
    auto current = tx.QueryInt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!current.ok()) return current.status();
    for (const auto& m : AllMigrations()) {
      if (m.version <= *current) continue;
      DROVER_RETURN_IF_ERROR(writer_conn_->ExecScript("BEGIN IMMEDIATE"));
      Status s;
      for (auto stmt : m.statements) {
        auto r = tx.Exec(stmt);
        if (!r.ok()) {
          s = r.status();
          break;
        }
      }
      if (s.ok()) {
        auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        auto r =
            tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    {int64_t{m.version}, m.name, int64_t{now}});
        if (!r.ok()) s = r.status();
      }
      if (!s.ok()) {
        (void)writer_conn_->ExecScript("ROLLBACK");
        return Status::Unavailable(
            fmt::format("migration {} ({}) failed: {}", m.version, m.name, s.ToString()));
      }
      DROVER_RETURN_IF_ERROR(writer_conn_->ExecScript("COMMIT"));
      LogInfo("applied migration {} ({})", m.version, m.name);
    }
    return Status::Ok();
  }

  struct Reader {
    std::unique_ptr<Connection> conn;
    uint64_t seq = 0;     // commit_seq_ when its read transaction began
    bool in_txn = false;  // a read transaction is open
  };

  static Status EndRead(Reader& r) {
    r.in_txn = false;
    SqliteTx tx(*r.conn);
    return tx.Exec("COMMIT").status();
  }

  Result<std::unique_ptr<Reader>> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!readers_.empty()) {
        auto r = std::move(readers_.back());
        readers_.pop_back();
        return r;
      }
    }
    auto c = Connection::Open(path_, "NORMAL");
    if (!c.ok()) return c.status();
    DROVER_RETURN_IF_ERROR((*c)->ExecScript("PRAGMA query_only=ON"));
    auto r = std::make_unique<Reader>();
    r->conn = std::move(*c);
    return r;
  }

  void ReleaseReader(std::unique_ptr<Reader> r) {
    std::lock_guard lock(readers_mu_);
    if (!closing_ && readers_.size() < static_cast<size_t>(options_.readers)) {
      readers_.push_back(std::move(r));
    }
  }

  // Ends the stale read transactions of idle pooled readers, so old snapshots never keep a
  // checkpoint from resetting the WAL. Called by the writer now and then.
  void SweepIdleReaders() {
    uint64_t seq = commit_seq_.load(std::memory_order_acquire);
    std::lock_guard lock(readers_mu_);
    for (auto& r : readers_) {
      if (r->in_txn && r->seq != seq) (void)EndRead(*r);
    }
  }

  void WriterLoop() {
    SqliteTx tx(*writer_conn_);
    tx.set_writable(true);
    std::vector<PendingWrite> batch;
    std::vector<Status> results;
    int commits_since_sweep = 0;
    auto last_sweep = std::chrono::steady_clock::now();
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closing and drained
        while (!queue_.empty() && batch.size() < options_.max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      auto start = std::chrono::steady_clock::now();
      results.assign(batch.size(), Status::Ok());
      tx.reset_max_index();
      // Cached statements: no parsing per write on the hot path.
      auto run = [&tx](std::string_view sql) { return tx.Exec(sql).status(); };
      Status commit = run("BEGIN IMMEDIATE");
      if (commit.ok()) {
        for (size_t i = 0; i < batch.size(); ++i) {
          commit = run("SAVEPOINT w");
          if (!commit.ok()) break;
          results[i] = RunWrite(batch[i].fn, tx);
          if (!results[i].ok()) commit = run("ROLLBACK TO w");
          if (commit.ok()) commit = run("RELEASE w");
          if (!commit.ok()) break;
        }
      }
      if (commit.ok()) commit = run("COMMIT");
      if (!commit.ok()) {
        (void)writer_conn_->ExecScript("ROLLBACK");
        LogError("SQLite commit failed: {}", commit.message());
        for (auto& r : results) r = Status::Unavailable("storage error: " + commit.message());
      } else {
        if (tx.max_index() > 0) last_index_.store(tx.max_index(), std::memory_order_release);
        commit_seq_.fetch_add(1, std::memory_order_acq_rel);
        if (++commits_since_sweep >= 64 ||
            std::chrono::steady_clock::now() - last_sweep > std::chrono::seconds(1)) {
          SweepIdleReaders();
          commits_since_sweep = 0;
          last_sweep = std::chrono::steady_clock::now();
        }
      }
      if (options_.on_commit) {
        options_.on_commit(
            {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
             batch.size()});
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].done) batch[i].done(std::move(results[i]));
      }
      batch.clear();
    }
  }

  static Status RunWrite(const WriteFn& fn, Tx& tx) {
    try {
      return fn(tx);
    } catch (const std::exception& e) {  // a bug in a write function must not kill the writer
      return Status::Internal(e.what());
    }
  }

  const std::string path_;
  const StoreOptions options_;
  int lock_fd_;
  std::unique_ptr<Connection> writer_conn_;
  std::thread writer_;
  std::atomic<int64_t> last_index_{0};
  std::atomic<uint64_t> commit_seq_{0};  // successful commits by this process

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingWrite> queue_;  // GUARDED_BY(mu_)
  bool closing_ = false;            // GUARDED_BY(mu_)

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Reader>> readers_;  // GUARDED_BY(readers_mu_)
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options) {
  // SQLite's memory statistics take a global mutex on every allocation; nothing reads them.
  // Must happen before SQLite initializes, so before the first connection opens.
  static std::once_flag config_once;
  std::call_once(config_once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  if (path.empty()) return Status::InvalidArgument("sqlite:// needs a file path");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return Status::Unavailable(fmt::format("cannot create {}: {}", parent.string(), ec.message()));
  }
  std::string lock_path = path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot open lock file " + lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::Unavailable(fmt::format(
        "{} is in use by another drover server (SQLite serves one server; use PostgreSQL to run "
        "several)",
        path));
  }
  auto store = std::make_unique<SqliteStore>(path, options, fd);
  DROVER_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace drover::store
