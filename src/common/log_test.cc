#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_dir.h"

namespace drover {
namespace {

// Many threads logging at once, with urgent lines (written at once) and explicit flushes racing
// the background writer: every thread finishes. (The writer once re-took its buffer lock while
// holding the output lock, and deadlocked against a thread doing the reverse.)
TEST(Log, ConcurrentUrgentLinesAndFlushesNeverDeadlockAndLoseNothing) {
  testing::TempDir dir;
  FlushLogs();
  int saved = ::dup(2);
  int file = ::open(dir.File("log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ::dup2(file, 2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 3000; ++i) {
        if (i % 3 == 0) {
          LogError("thread {} line {}", t, i);  // urgent: written by this thread
        } else {
          LogInfo("thread {} line {}", t, i);
        }
        if (i % 50 == 0) FlushLogs();
      }
    });
  }
  for (auto& th : threads) th.join();
  FlushLogs();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(file);
  // Every line arrived, whole, and each thread's lines in the order it logged them.
  std::ifstream in(dir.File("log"));
  std::vector<int> next(8, 0);
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    auto at = l.find("thread ");
    if (at == std::string::npos) continue;
    int t = 0, i = 0;
    ASSERT_EQ(std::sscanf(l.c_str() + at, "thread %d line %d", &t, &i), 2) << l;
    ASSERT_EQ(i, next[static_cast<size_t>(t)]) << "thread " << t << " out of order";
    next[static_cast<size_t>(t)]++;
    ++lines;
  }
  EXPECT_EQ(lines, 8 * 3000);
}

}  // namespace
}  // namespace drover
