#include "store/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "store/group_commit.h"
#include "store/migrations.h"
#include "store/postgres/connection.h"
#include "testing/fake_clock.h"
#include "testing/store_fixture.h"
#include "testing/temp_dir.h"

namespace drover::store {
namespace {

using testing::Backend;

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Every Open() of a test opens the same database.
  std::unique_ptr<Store> Open(StoreOptions opts = {}) {
    if (url_.empty()) url_ = testing::NewStoreUrl(GetParam(), dir_, "db/drover.db");
    return testing::OpenStoreAt(url_, std::move(opts));
  }
  Status PutVar(Store& s, const std::string& key, const std::string& value) {
    return WriteSync(s, [=](Tx& tx) -> Status {
      auto idx = tx.NextIndex();
      if (!idx.ok()) return idx.status();
      return tx
          .Exec(
              "INSERT INTO variables (tenant, environment, key, value, create_index,"
              " modify_index, updated_at) VALUES ('t', '', ?, ?, ?, ?, 0)",
              {key, value, *idx, *idx})
          .status();
    });
  }
  int64_t CountVars(Store& s) {
    int64_t n = -1;
    EXPECT_TRUE(s.Read([&](Tx& tx) {
                   auto r = tx.QueryInt("SELECT COUNT(*) FROM variables");
                   if (r.ok()) n = *r;
                   return r.status();
                 }).ok());
    return n;
  }
  testing::TempDir dir_;
  std::string url_;
};
DROVER_ON_ALL_BACKENDS(StoreTest);

TEST_P(StoreTest, WritesAreDurableAcrossReopen) {
  {
    auto s = Open();
    ASSERT_TRUE(PutVar(*s, "a", "1").ok());
    ASSERT_TRUE(PutVar(*s, "b", "2").ok());
    EXPECT_EQ(s->LastIndex(), 2);
  }
  auto s = Open();
  EXPECT_EQ(CountVars(*s), 2);
  EXPECT_EQ(s->LastIndex(), 2);  // the index survives a restart and never goes back
  ASSERT_TRUE(PutVar(*s, "c", "3").ok());
  EXPECT_EQ(s->LastIndex(), 3);
}

TEST_P(StoreTest, FailingWriteRollsBackAloneInItsBatch) {
  auto s = Open();
  ASSERT_TRUE(PutVar(*s, "dup", "1").ok());
  std::vector<std::promise<Status>> results(3);
  // Queue three writes at once; the middle one violates the primary key after writing a row.
  auto write = [&](int i, std::string key) {
    s->Write(
        [key, i](Tx& tx) -> Status {
          if (i == 1) {
            auto ok = tx.Exec("INSERT INTO counters (name, value) VALUES ('scratch', 1)");
            if (!ok.ok()) return ok.status();
          }
          return tx
              .Exec(
                  "INSERT INTO variables (tenant, environment, key, value, create_index,"
                  " modify_index, updated_at) VALUES ('t', '', ?, 'v', 0, 0, 0)",
                  {key})
              .status();
        },
        [&results, i](Status st) { results[static_cast<size_t>(i)].set_value(st); });
  };
  write(0, "x");
  write(1, "dup");
  write(2, "y");
  EXPECT_TRUE(results[0].get_future().get().ok());
  EXPECT_EQ(results[1].get_future().get().code(), Status::Code::kConflict);
  EXPECT_TRUE(results[2].get_future().get().ok());
  EXPECT_EQ(CountVars(*s), 3);
  int64_t scratch = -1;
  ASSERT_TRUE(s->Read([&](Tx& tx) {
                 scratch =
                     tx.QueryInt("SELECT COUNT(*) FROM counters WHERE name = 'scratch'").value();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(scratch, 0) << "the failed write's earlier statement must be rolled back";
}

TEST_P(StoreTest, ConcurrentWritesShareCommits) {
  std::atomic<int64_t> commits{0}, writes{0};
  StoreOptions opts;
  opts.on_commit = [&](const CommitStats& c) {
    commits++;
    writes += static_cast<int64_t>(c.batch);
  };
  auto s = Open(opts);
  constexpr int kThreads = 16, kPer = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        ASSERT_TRUE(PutVar(*s, "k" + std::to_string(t) + "-" + std::to_string(i), "v").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(CountVars(*s), kThreads * kPer);
  EXPECT_EQ(writes.load(), kThreads * kPer);
  EXPECT_LT(commits.load(), writes.load()) << "concurrent writes should be group-committed";
  EXPECT_EQ(s->LastIndex(), kThreads * kPer);
}

TEST(SqliteStore, SecondOpenOfTheSameFileIsRefused) {
  testing::TempDir dir;
  auto s = testing::OpenTestStore(dir, "db/drover.db");
  StoreOptions opts;
  opts.url = "sqlite://" + dir.File("db/drover.db");
  auto again = OpenStore(opts);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(again.status().message().find("in use"), std::string::npos);
}

// SQLite's database time is the clock the store is given (tests move it by hand).
TEST(SqliteStore, ItsTimeIsTheClockItIsGiven) {
  testing::TempDir dir;
  testing::FakeClock clock;
  clock.Set(FromUnixMillis(1'900'000'000'000));
  StoreOptions opts;
  opts.clock = &clock;
  auto s = testing::OpenTestStore(dir, "t.db", opts);
  ASSERT_TRUE(s);
  auto now = [&] {
    int64_t at = 0;
    EXPECT_TRUE(WriteSync(*s, [&](Tx& tx) -> Status {
                  auto t = tx.NowMillis();
                  if (t.ok()) at = *t;
                  return t.status();
                }).ok());
    return at;
  };
  EXPECT_EQ(now(), 1'900'000'000'000);
  clock.Advance(std::chrono::seconds(90));
  EXPECT_EQ(now(), 1'900'000'090'000);
}

TEST_P(StoreTest, CloseFinishesQueuedWrites) {
  auto s = Open();
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    s->Write(
        [i](Tx& tx) {
          return tx
              .Exec(
                  "INSERT INTO variables (tenant, environment, key, value, create_index,"
                  " modify_index, updated_at) VALUES ('t', '', ?, 'v', 0, 0, 0)",
                  {std::string_view("q" + std::to_string(i))})
              .status();
        },
        [&](Status st) {
          EXPECT_TRUE(st.ok()) << st.ToString();
          done++;
        });
  }
  s->Close();
  EXPECT_EQ(done.load(), 200);
  s.reset();
  auto reopened = Open();
  EXPECT_EQ(CountVars(*reopened), 200);
}

class SqliteStoreTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(, SqliteStoreTest, ::testing::Values(Backend::kSqlite),
                         testing::BackendName);

TEST_P(SqliteStoreTest, ReadsSeeEveryCommitAndIdleSnapshotsDoNotPinTheWal) {
  auto s = Open();
  ASSERT_TRUE(PutVar(*s, "first", "1").ok());
  EXPECT_EQ(CountVars(*s), 1);  // leaves a pooled reader with an open snapshot
  // Many small commits while a pooled reader holds a snapshot now and then: every read sees the
  // latest commit, and the WAL restarts after each checkpoint (threshold 8 MB), staying near
  // 10 MB. Snapshots left pinned took it past 36 MB.
  for (int i = 0; i < 4000; ++i) {
    ASSERT_TRUE(PutVar(*s, "k" + std::to_string(i), "v").ok());
    if (i % 500 == 0) {
      EXPECT_EQ(CountVars(*s), i + 2);
    }
  }
  EXPECT_EQ(CountVars(*s), 4001);
  auto wal = std::filesystem::file_size(dir_.File("db/drover.db-wal"));
  EXPECT_LT(wal, 24u << 20) << "WAL grew to " << wal << " bytes";
}

TEST(Migrations, DialectTokensAreReplacedPerBackend) {
  EXPECT_EQ(ForBackend("CREATE TABLE t (a TEXT PRIMARY KEY) {{without_rowid}}", "sqlite"),
            "CREATE TABLE t (a TEXT PRIMARY KEY) WITHOUT ROWID");
  EXPECT_EQ(ForBackend("CREATE TABLE t (a TEXT PRIMARY KEY) {{without_rowid}}", "postgres"),
            "CREATE TABLE t (a TEXT PRIMARY KEY) ");
  EXPECT_EQ(ForBackend("CREATE TABLE t (s {{rowid_bigint}} PRIMARY KEY)", "sqlite"),
            "CREATE TABLE t (s INTEGER PRIMARY KEY)");
  EXPECT_EQ(ForBackend("CREATE TABLE t (s {{rowid_bigint}} PRIMARY KEY)", "postgres"),
            "CREATE TABLE t (s BIGINT PRIMARY KEY)");
  EXPECT_EQ(ForBackend("SELECT 1", "sqlite"), "SELECT 1");
  EXPECT_EQ(ForBackend("(a TEXT {{bytes}}, b TEXT {{bytes}})", "postgres"),
            "(a TEXT COLLATE \"C\", b TEXT COLLATE \"C\")");
  EXPECT_EQ(ForBackend("(a TEXT {{bytes}})", "sqlite"), "(a TEXT )");
  EXPECT_EQ(ForBackend("(id {{serial}})", "sqlite"), "(id INTEGER PRIMARY KEY AUTOINCREMENT)");
  EXPECT_EQ(ForBackend("(id {{serial}})", "postgres"), "(id BIGSERIAL PRIMARY KEY)");
  EXPECT_EQ(ForBackend("{{postgres_only}}CREATE FUNCTION f()", "postgres"), "CREATE FUNCTION f()");
  EXPECT_EQ(ForBackend("{{postgres_only}}CREATE FUNCTION f()", "sqlite"), "");
  for (const auto& m : AllMigrations()) {
    for (auto stmt : m.statements) {
      EXPECT_EQ(ForBackend(stmt, "postgres").find("{{"), std::string::npos) << stmt;
      EXPECT_EQ(ForBackend(stmt, "sqlite").find("{{"), std::string::npos) << stmt;
    }
  }
}

// drover_now_ms() reads the database's clock in SQL on both backends (SQLite: the store's own,
// injectable clock).
TEST_P(StoreTest, NowMillisIsCallableFromSql) {
  testing::FakeClock fake;
  fake.Set(FromUnixMillis(1'800'000'000'000));
  StoreOptions opts;
  opts.clock = &fake;  // SQLite's clock; PostgreSQL's is the server's own
  auto store = Open(opts);
  ASSERT_TRUE(store);
  int64_t now = 0;
  ASSERT_TRUE(store
                  ->Read([&](Tx& tx) -> Status {
                    auto v = tx.QueryInt("SELECT drover_now_ms()");
                    if (!v.ok()) return v.status();
                    now = *v;
                    return Status::Ok();
                  })
                  .ok());
  if (GetParam() == Backend::kSqlite) {
    EXPECT_EQ(now, 1'800'000'000'000);
  } else {
    EXPECT_LT(std::abs(now - ToUnixMillis(SystemClock::Get().Now())), 60'000);
  }
}

TEST(Postgres, QuestionMarksOutsideQuotesBecomeNumberedParameters) {
  EXPECT_EQ(postgres::ToPositional("SELECT ? , ?"), "SELECT $1 , $2");
  EXPECT_EQ(postgres::ToPositional("SELECT '?', \"a?\", ? WHERE x = 'it''s?' AND y = ?"),
            "SELECT '?', \"a?\", $1 WHERE x = 'it''s?' AND y = $2");
}

TEST(Store, RedactUrlHidesPasswords) {
  EXPECT_EQ(RedactUrl("postgres://drover:s3cret@db:5432/drover"),
            "postgres://drover:***@db:5432/drover");
  EXPECT_EQ(RedactUrl("host=db password=s3cret dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(RedactUrl("postgres://drover@db/drover"), "postgres://drover@db/drover");
  EXPECT_EQ(RedactUrl("sqlite://./drover-data/drover.db"), "sqlite://./drover-data/drover.db");
}

TEST(Store, UnknownSchemeIsRejected) {
  StoreOptions opts;
  opts.url = "mysql://x";
  auto s = OpenStore(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
}

TEST_P(StoreTest, NextIndexOnlyInsideWrites) {
  auto s = Open();
  Status st = s->Read([](Tx& tx) { return tx.NextIndex().status(); });
  EXPECT_EQ(st.code(), Status::Code::kInternal);
}

// Deferred statements (pipelined on PostgreSQL): a failing one fails its own write only, its
// callback sees the statement's row, and a later synchronous statement sees earlier deferred
// ones.
TEST_P(StoreTest, DeferredStatementsFailAloneAndReturnRows) {
  auto s = Open();
  ASSERT_TRUE(PutVar(*s, "dup", "1").ok());
  constexpr int kWrites = 5;
  std::vector<std::promise<Status>> results(kWrites);
  std::vector<int64_t> returned(kWrites, -1);
  for (int i = 0; i < kWrites; ++i) {
    std::string key = i == 2 ? "dup" : "d" + std::to_string(i);
    s->Write(
        [&, key, i](Tx& tx) -> Status {
          return tx.Defer(
              "INSERT INTO variables (tenant, environment, key, value, create_index,"
              " modify_index, updated_at) VALUES ('t', '', ?, 'v', ?, 0, 0) RETURNING create_index",
              {key, int64_t{100 + i}},
              [&, i](const Row* r) { returned[static_cast<size_t>(i)] = r ? r->Int(0) : -2; });
        },
        [&results, i](Status st) { results[static_cast<size_t>(i)].set_value(st); });
  }
  for (int i = 0; i < kWrites; ++i) {
    Status st = results[static_cast<size_t>(i)].get_future().get();
    if (i == 2) {
      EXPECT_EQ(st.code(), Status::Code::kConflict) << st.ToString();
    } else {
      EXPECT_TRUE(st.ok()) << i << ": " << st.ToString();
      EXPECT_EQ(returned[static_cast<size_t>(i)], 100 + i);
    }
  }
  EXPECT_EQ(CountVars(*s), kWrites);  // "dup" once plus the four others
  // Deferred, then synchronous in one write: the query sees the deferred insert.
  int64_t seen = -1;
  ASSERT_TRUE(WriteSync(*s, [&](Tx& tx) -> Status {
                DROVER_RETURN_IF_ERROR(
                    tx.Defer("INSERT INTO counters (name, value) VALUES ('deferred', 7)", {},
                             [](const Row*) {}));
                auto v = tx.QueryInt("SELECT value FROM counters WHERE name = 'deferred'");
                if (v.ok()) seen = *v;
                return v.status();
              }).ok());
  EXPECT_EQ(seen, 7);
}

TEST_P(StoreTest, CommittedChangesArePublishedWithTheirTopics) {
  auto s = Open();
  std::mutex mu;
  std::vector<Change> seen;
  int sub = s->Subscribe([&](const Change& c) {
    std::lock_guard lock(mu);
    seen.push_back(c);
  });
  ASSERT_TRUE(WriteSync(*s, [](Tx& tx) -> Status {
                auto idx = tx.NextIndex();
                if (!idx.ok()) return idx.status();
                DROVER_RETURN_IF_ERROR(tx.Notify("variables"));
                DROVER_RETURN_IF_ERROR(tx.Notify("environment/web"));
                return tx.Notify("variables");  // repeated: sent once
              }).ok());
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return !seen.empty();
  }));
  s->Unsubscribe(sub);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen[0].index, 1);
  EXPECT_EQ(seen[0].topics, (std::vector<std::string>{"variables", "environment/web"}));
  EXPECT_FALSE(seen[0].resync);
}

TEST_P(StoreTest, FailedWritesPublishNothing) {
  auto s = Open();
  std::atomic<int> changes{0};
  s->Subscribe([&](const Change&) { changes++; });
  Status st = WriteSync(*s, [](Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(tx.Notify("variables"));
    return Status::Conflict("no");
  });
  EXPECT_EQ(st.code(), Status::Code::kConflict);
  ASSERT_TRUE(PutVar(*s, "after", "1").ok());  // its (topic-less) index change is published
  ASSERT_TRUE(testing::WaitFor([&] { return changes.load() >= 1; }));
  EXPECT_EQ(s->LastIndex(), 1);
}

TEST_P(StoreTest, DatabaseClockIsWallClock) {
  auto s = Open();
  int64_t db = 0;
  ASSERT_TRUE(s->Read([&](Tx& tx) {
                 auto n = tx.NowMillis();
                 if (n.ok()) db = *n;
                 return n.status();
               }).ok());
  int64_t here = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  EXPECT_LT(std::abs(here - db), 60'000);  // same machine: the same clock
}

// PostgreSQL only: several servers (here: stores) on one database.
class SharedDatabaseTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(, SharedDatabaseTest, ::testing::Values(Backend::kPostgres),
                         testing::BackendName);

TEST_P(SharedDatabaseTest, AWriteThroughOneIsSeenAndNotifiedOnTheOther) {
  auto a = Open();
  auto b = Open();  // a second server on the same database
  std::atomic<int64_t> b_saw{0};
  b->Subscribe([&](const Change& c) {
    if (std::find(c.topics.begin(), c.topics.end(), "variables") != c.topics.end()) {
      b_saw = c.index;
    }
  });
  ASSERT_TRUE(WriteSync(*a, [](Tx& tx) -> Status {
                auto idx = tx.NextIndex();
                if (!idx.ok()) return idx.status();
                DROVER_RETURN_IF_ERROR(tx.Notify("variables"));
                return tx
                    .Exec(
                        "INSERT INTO variables (tenant, environment, key, value, create_index,"
                        " modify_index, updated_at) VALUES ('t', '', 'shared', 'v', ?, ?, 0)",
                        {*idx, *idx})
                    .status();
              }).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return b_saw.load() == 1; })) << b_saw.load();
  EXPECT_EQ(b->LastIndex(), 1);
  EXPECT_EQ(CountVars(*b), 1);
}

// How soon server B hears of a commit made through server A (printed, not asserted: timing
// thresholds do not belong in tests on a shared machine; the figure goes to bench/RESULTS.md).
TEST_P(SharedDatabaseTest, NotificationLatencyAcrossServers) {
  auto a = Open();
  auto b = Open();
  std::mutex mu;
  std::condition_variable cv;
  int64_t heard = 0;
  b->Subscribe([&](const Change& c) {
    std::lock_guard lock(mu);
    heard = std::max(heard, c.index);
    cv.notify_all();
  });
  std::vector<double> ms;
  for (int i = 0; i < 100; ++i) {
    auto start = std::chrono::steady_clock::now();  // upper bound: includes the commit itself
    ASSERT_TRUE(PutVar(*a, "n" + std::to_string(i), "v").ok());
    int64_t want = a->LastIndex();
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return heard >= want; }));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  std::cout << "[ measured ] write submitted on A -> change event on B: p50 " << ms[50]
            << " ms, p99 " << ms[98] << " ms, max " << ms[99] << " ms (100 commits)\n";
  EXPECT_EQ(b->LastIndex(), a->LastIndex());
}

TEST_P(SharedDatabaseTest, IndexesStayUniqueAndOrderedAcrossServers) {
  auto a = Open();
  auto b = Open();
  constexpr int kPer = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    Store& s = t % 2 ? *b : *a;
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer / 4; ++i) {
        ASSERT_TRUE(PutVar(s, "k" + std::to_string(t) + "-" + std::to_string(i), "v").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t distinct = 0, max = 0;
  ASSERT_TRUE(a->Read([&](Tx& tx) {
                 distinct =
                     tx.QueryInt("SELECT COUNT(DISTINCT modify_index) FROM variables").value();
                 max = tx.QueryInt("SELECT MAX(modify_index) FROM variables").value();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(distinct, 2 * kPer);
  EXPECT_EQ(max, 2 * kPer);
  ASSERT_TRUE(testing::WaitFor([&] { return a->LastIndex() == max && b->LastIndex() == max; }));
}

TEST_P(SharedDatabaseTest, ServersStartingAtOnceMigrateOnce) {
  std::string url = testing::NewStoreUrl(GetParam(), dir_);
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      StoreOptions o;
      o.url = url;
      auto s = OpenStore(o);
      if (s.ok())
        opened++;
      else
        ADD_FAILURE() << s.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  auto s = testing::OpenStoreAt(url);
  ASSERT_TRUE(s);
  int64_t n = 0;
  ASSERT_TRUE(s->Read([&](Tx& tx) {
                 n = tx.QueryInt("SELECT COUNT(*) FROM schema_migrations").value();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(n, static_cast<int64_t>(AllMigrations().size()));
}

}  // namespace
}  // namespace drover::store

namespace drover::store {
namespace {

// A failed fdatasync leaves committed batches of unknown durability: the server stops (exit 74)
// instead of answering them, and the next start recovers from the WAL (as PostgreSQL panics).
TEST(SqliteStoreDeathTest, FailedSyncStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  testing::TempDir dir;
  EXPECT_EXIT(
      {
        StoreOptions o;
        o.sqlite_sync = [](int) {
          errno = EIO;
          return -1;
        };
        auto s = testing::OpenTestStore(dir, "t.db", o);
        bool answered_ok = false;
        Status st = WriteSync(*s, [](Tx& tx) {
          return tx.Exec("INSERT INTO counters (name, value) VALUES ('x', 1)").status();
        });
        answered_ok = st.ok();
        std::fprintf(stderr, "answered %s\n", answered_ok ? "ok" : "error");
        std::exit(0);
      },
      ::testing::ExitedWithCode(74), "fdatasync of the SQLite WAL failed");
}

// A write the writer never takes (a stalled database) is refused after the queue's wait, and
// never runs after that.
TEST(WriteQueueTest, AWriteNotTakenInTimeIsRefusedAndNeverRuns) {
  WriteQueue q(16, std::chrono::milliseconds(20));
  std::atomic<int> refused{0}, ran{0};
  for (int i = 0; i < 3; ++i) {
    q.Push(
        [&](Tx&) {
          ++ran;
          return Status::Ok();
        },
        [&](Status s) { refused += s.IsUnavailable(); });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return refused == 3; }));
  std::vector<PendingWrite> batch;
  q.Close();
  EXPECT_FALSE(q.Take(batch, 16, [](size_t) { return true; })) << "nothing left to run";
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace drover::store
