#pragma once
// A temporary directory removed (with its contents) when the object dies.
#include <string>

namespace drover::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `cond` every 10 ms until it is true or `timeout` passes; returns its last value.
// Generous deadlines, never sleep-then-assert.
template <typename F>
bool WaitFor(F&& cond, int timeout_ms = 20000);

}  // namespace drover::testing

#include <chrono>
#include <thread>

template <typename F>
bool drover::testing::WaitFor(F&& cond, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}
