#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "store/changes.h"
#include "store/group_commit.h"
#include "store/migrations.h"
#include "store/origin.h"
#include "store/sqlite/connection.h"

namespace drover::store {
namespace {

using sqlite::Connection;
using sqlite::SqliteTx;

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, StoreOptions options, int lock_fd)
      : path_(std::move(path)),
        options_(std::move(options)),
        lock_fd_(lock_fd),
        queue_(options_.max_queue, options_.write_queue_timeout) {}
  ~SqliteStore() override { Close(); }

  Status Init() {
    // SQLite itself never syncs on commit: in the default (durable) mode the syncer thread
    // fdatasyncs the WAL and only then answers, so the writer never waits for the disk.
    auto w = Connection::Open(path_, "NORMAL", clock());
    if (!w.ok()) return w.status();
    writer_conn_ = std::move(*w);
    DROVER_RETURN_IF_ERROR(Migrate());
    SqliteTx tx(*writer_conn_, clock());
    auto idx = tx.QueryInt("SELECT value FROM counters WHERE name = 'index'");
    if (!idx.ok()) return idx.status();
    last_index_ = *idx;
    committed_index_ = next_index_ = *idx;
    auto ckpt = Connection::Open(path_, "FULL", clock());
    if (!ckpt.ok()) return ckpt.status();
    sqlite3_wal_hook(writer_conn_->db(), &SqliteStore::OnWalCommit, this);
    checkpointer_ =
        std::thread([this, c = std::move(*ckpt)]() mutable { CheckpointLoop(std::move(c)); });
    if (!options_.sqlite_sync_normal) {
      std::string wal = path_ + "-wal";
      wal_fd_ = ::open(wal.c_str(), O_RDWR | O_CLOEXEC);
      if (wal_fd_ < 0) return Status::Unavailable("cannot open " + wal + " for syncing");
      // The WAL's directory entry must be durable too.
      auto dir = std::filesystem::path(path_).parent_path();
      int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    syncer_ = std::thread([this] { SyncLoop(); });
    writer_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  std::string_view Backend() const override { return "sqlite"; }

  void Write(WriteFn fn, DoneFn done) override {
    queue_.Push(WithCurrentOrigin(std::move(fn)), std::move(done));
  }

  Status Read(FunctionRef<Status(Tx&)> fn) override {
    auto reader = AcquireReader();
    if (!reader.ok()) return reader.status();
    Reader& r = **reader;
    SqliteTx tx(*r.conn, clock());
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
  int Subscribe(ChangeFn fn) override { return changes_.Subscribe(std::move(fn)); }
  void Unsubscribe(int id) override { changes_.Unsubscribe(id); }

  Status Ping() override {
    return Read([](Tx& tx) { return tx.QueryInt("SELECT 1").status(); });
  }

  void Close() override {
    if (!queue_.Close()) return;
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard lock(sync_mu_);
      sync_stop_ = true;
      sync_cv_.notify_all();
    }
    if (syncer_.joinable()) syncer_.join();
    if (wal_fd_ >= 0) ::close(wal_fd_);
    wal_fd_ = -1;
    {
      std::lock_guard lock(ckpt_mu_);
      ckpt_stop_ = true;
      ckpt_cv_.notify_all();
    }
    if (checkpointer_.joinable()) checkpointer_.join();
    std::lock_guard lock(readers_mu_);
    readers_.clear();
    writer_conn_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

 private:
  Status Migrate() {
    SqliteTx tx(*writer_conn_, clock());
    return ApplyMigrations(tx, "sqlite", "BEGIN IMMEDIATE");
  }

  struct Reader {
    std::unique_ptr<Connection> conn;
    uint64_t seq = 0;     // commit_seq_ when its read transaction began
    bool in_txn = false;  // a read transaction is open
  };

  static Status EndRead(Reader& r) {
    r.in_txn = false;
    SqliteTx tx(*r.conn, SystemClock::Get());  // a COMMIT reads no time
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
    auto c = Connection::Open(path_, "NORMAL", clock());
    if (!c.ok()) return c.status();
    DROVER_RETURN_IF_ERROR((*c)->ExecScript("PRAGMA query_only=ON"));
    auto r = std::make_unique<Reader>();
    r->conn = std::move(*c);
    return r;
  }

  void ReleaseReader(std::unique_ptr<Reader> r) {
    std::lock_guard lock(readers_mu_);
    if (!queue_.closed() && readers_.size() < static_cast<size_t>(options_.readers)) {
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
    SqliteTx tx(*writer_conn_, clock());
    tx.set_writable(true, &next_index_);
    std::vector<PendingWrite> batch;
    std::vector<Status> results;
    int commits_since_sweep = 0;
    auto last_sweep = std::chrono::steady_clock::now();
    // While the syncer is still syncing earlier batches, writes committed now would only be
    // acknowledged after the next sync anyway: keep gathering until it is free (or enough are
    // queued), so each commit carries more writes at no cost in latency.
    auto ready = [this](size_t queued) {
      return !syncing_.load() || queued >= kGatherWhileSyncing;
    };
    while (queue_.Take(batch, options_.max_batch, ready)) {
      auto start = std::chrono::steady_clock::now();
      // Optimistic first: no savepoints. If a write fails, the attempt is rolled back and the
      // batch runs again with a savepoint per write, so the failure rolls back alone.
      auto reset = [&] {
        next_index_ = committed_index_;
        tx.reset();
      };
      auto begin = [&] { return tx.Exec("BEGIN IMMEDIATE").status(); };
      // The index is allocated in memory (this is the only writer) and persisted once per batch.
      auto commit_batch = [&] {
        if (next_index_ != committed_index_) {
          DROVER_RETURN_IF_ERROR(
              tx.Exec("UPDATE counters SET value = ? WHERE name = 'index'", {next_index_})
                  .status());
        }
        return tx.Exec("COMMIT").status();
      };
      auto on_write = [](size_t) {};
      auto flush = [](std::vector<Status>&, bool*) { return Status::Ok(); };  // Defer runs at once
      auto rollback = [&] { return tx.Exec("ROLLBACK").status(); };
      Status commit =
          RunBatch(tx, batch, results, {begin, reset, commit_batch, rollback, on_write, flush});
      if (!commit.ok()) {
        LogError("SQLite commit failed: {}", commit.ToString());
        for (auto& r : results) {
          r = Status::Unavailable("storage error: " + commit.message()).WithDetail(commit.detail());
        }
      } else {
        committed_index_ = next_index_;
        MaybeFinishCheckpoint();
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
      // The syncer makes the batch durable and answers it; the writer goes on with the next
      // batch meanwhile, so disk syncs overlap with executing writes.
      {
        std::lock_guard lock(sync_mu_);
        Synced item;
        item.max_index = commit.ok() ? tx.max_index() : 0;
        item.committed = commit.ok();
        if (commit.ok()) item.topics = std::move(tx.topics());
        for (size_t i = 0; i < batch.size(); ++i) {
          item.answers.emplace_back(std::move(batch[i].done), std::move(results[i]));
        }
        sync_queue_.push_back(std::move(item));
        sync_cv_.notify_one();
      }
      batch.clear();
    }
  }

  // Tells the writer whether a sync is in progress (it gathers writes meanwhile).
  void SetSyncing(bool busy) {
    if (syncing_.exchange(busy) == busy || busy) return;
    queue_.Wake();
  }

  // Takes every committed batch queued so far, fdatasyncs the WAL once for all of them (a sync
  // covers every write that returned before it began) and then answers them, in commit order.
  void SyncLoop() {
    std::vector<Synced> work;
    std::unique_lock lock(sync_mu_);
    for (;;) {
      if (sync_queue_.empty()) SetSyncing(false);
      sync_cv_.wait(lock, [&] { return sync_stop_ || !sync_queue_.empty(); });
      if (sync_queue_.empty()) return;  // stopping and drained
      SetSyncing(true);
      work.swap(sync_queue_);
      lock.unlock();
      if (wal_fd_ >= 0 &&
          std::any_of(work.begin(), work.end(), [](auto& w) { return w.committed; })) {
        int rc = options_.sqlite_sync ? options_.sqlite_sync(wal_fd_) : ::fdatasync(wal_fd_);
        if (rc != 0) {
          // The batches are committed (readers may have seen them) but not known to be on disk,
          // and after a failed fsync the kernel may have dropped the dirty pages: answering
          // "not stored" would be a lie either way. Stop, as PostgreSQL does, and let the next
          // start recover from what the WAL holds. Nobody was told the write was durable.
          LogError(
              "fdatasync of the SQLite WAL failed: {}; stopping the server (exit 74) so that "
              "recovery replays the WAL",
              std::strerror(errno));
          FlushLogs();
          std::_Exit(kExitSyncFailed);
        }
      }
      // The disk is done: let the writer commit the next batch while this one is answered.
      SetSyncing(false);
      for (auto& item : work) {
        if (item.max_index > 0) {
          last_index_.store(std::max(last_index_.load(), item.max_index),
                            std::memory_order_release);
        }
        for (auto& [done, status] : item.answers) {
          if (!done) continue;
          done(std::move(status));
        }
        if (item.committed && (item.max_index > 0 || !item.topics.empty())) {
          changes_.Publish({LastIndex(), std::move(item.topics), false});
        }
      }
      work.clear();
      lock.lock();
    }
  }

  // The background checkpointer copies the bulk of the WAL but, with commits arriving all the
  // time, can never copy the last frames before new ones land, and the WAL only restarts after
  // a checkpoint that copied everything. So once it has done a pass over a large WAL, the
  // writer checkpoints the (few) remaining frames itself, between two commits.
  void MaybeFinishCheckpoint() {
    if (wal_pages_ < kCheckpointPages || !background_pass_done_.exchange(false)) return;
    int log = 0, done = 0;
    sqlite3_wal_checkpoint_v2(writer_conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  }

  // Called by SQLite after each commit with the WAL's size in pages (this replaces
  // autocheckpoint: checkpoints run on their own thread, off the commit path).
  static int OnWalCommit(void* arg, sqlite3*, const char*, int pages) {
    auto* self = static_cast<SqliteStore*>(arg);
    self->wal_pages_ = pages;
    if (pages >= kCheckpointPages && !self->checkpoint_wanted_.exchange(true)) {
      std::lock_guard lock(self->ckpt_mu_);
      self->ckpt_cv_.notify_one();
    }
    return SQLITE_OK;
  }

  void CheckpointLoop(std::unique_ptr<Connection> conn) {
    std::unique_lock lock(ckpt_mu_);
    while (!ckpt_stop_) {
      clock().WaitUntil(lock, ckpt_cv_, clock().Steady() + std::chrono::seconds(1),
                        [&] { return ckpt_stop_ || checkpoint_wanted_.load(); });
      if (ckpt_stop_) break;
      checkpoint_wanted_ = false;
      lock.unlock();
      int log = 0, done = 0;
      // PASSIVE never blocks the writer or readers; frames it cannot copy yet wait for the next.
      int rc =
          sqlite3_wal_checkpoint_v2(conn->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        LogWarn("WAL checkpoint failed: {}", sqlite3_errmsg(conn->db()));
      } else if (log >= kCheckpointPages) {
        background_pass_done_ = true;
      }
      lock.lock();
    }
  }

  const std::string path_;
  const StoreOptions options_;
  const Clock& clock() const { return options_.clock ? *options_.clock : SystemClock::Get(); }
  int lock_fd_;
  std::unique_ptr<Connection> writer_conn_;
  std::thread writer_;
  std::atomic<int64_t> last_index_{0};
  std::atomic<uint64_t> commit_seq_{0};  // successful commits by this process
  int64_t next_index_ = 0;               // writer thread only: last index handed out
  int64_t committed_index_ = 0;          // writer thread only: index persisted by the last commit

  // A committed batch waiting for its sync, with the answers to give once durable.
  struct Synced {
    bool committed = false;
    int64_t max_index = 0;
    std::vector<std::string> topics;
    std::vector<std::pair<DoneFn, Status>> answers;
  };
  static constexpr size_t kGatherWhileSyncing = 32;
  static constexpr int kExitSyncFailed = 74;  // EX_IOERR
  std::atomic<bool> syncing_{false};          // the syncer is syncing or answering
  std::thread syncer_;
  int wal_fd_ = -1;  // our own descriptor of the WAL file, for fdatasync (-1: synchronous=NORMAL)
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<Synced> sync_queue_;  // GUARDED_BY(sync_mu_)
  bool sync_stop_ = false;          // GUARDED_BY(sync_mu_)

  static constexpr int kCheckpointPages = 2000;  // 8 MB of WAL
  std::thread checkpointer_;
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  bool ckpt_stop_ = false;  // GUARDED_BY(ckpt_mu_)
  std::atomic<bool> checkpoint_wanted_{false};
  std::atomic<bool> background_pass_done_{false};
  int wal_pages_ = 0;  // writer thread only (set by the WAL hook during its commits)

  WriteQueue queue_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Reader>> readers_;  // GUARDED_BY(readers_mu_)
  ChangeHub changes_;
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
