#pragma once
// A Store wrapper whose writes, reads or pings can be made to fail, for testing the error paths
// (503 + Retry-After, readyz) on top of a real store. Thread-safe.
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "store/store.h"

namespace drover::testing {

class FaultyStore final : public store::Store {
 public:
  explicit FaultyStore(store::Store& inner) : inner_(inner) {}

  std::atomic<bool> fail_writes{false};  // Write answers Unavailable without writing
  std::atomic<bool> fail_reads{false};   // Read answers Unavailable without reading
  std::atomic<bool> fail_ping{false};    // Ping answers Unavailable
  // Writes after the next `hold_after` are held (not written, not answered) until
  // ReleaseWrites(); -1: none are held.
  std::atomic<int> hold_after{-1};

  std::string_view Backend() const override { return inner_.Backend(); }
  void Write(store::WriteFn fn, store::DoneFn done) override {
    if (fail_writes) return done(Status::Unavailable("injected: storage unavailable"));
    if (hold_after.load() >= 0 && hold_after.fetch_sub(1) <= 0) {
      std::lock_guard lock(mu_);
      held_.emplace_back(std::move(fn), std::move(done));
      return;
    }
    inner_.Write(std::move(fn), std::move(done));
  }
  // Writes the held writes now; returns how many there were.
  size_t ReleaseWrites() {
    std::vector<std::pair<store::WriteFn, store::DoneFn>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [fn, done] : held) inner_.Write(std::move(fn), std::move(done));
    return held.size();
  }
  size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  Status Read(FunctionRef<Status(store::Tx&)> fn) override {
    if (fail_reads) return Status::Unavailable("injected: storage unavailable");
    return inner_.Read(fn);
  }
  int64_t LastIndex() const override { return inner_.LastIndex(); }
  Status Ping() override {
    if (fail_ping) return Status::Unavailable("injected: database down");
    return inner_.Ping();
  }
  int Subscribe(store::ChangeFn fn) override { return inner_.Subscribe(std::move(fn)); }
  void Unsubscribe(int id) override { inner_.Unsubscribe(id); }
  void Close() override { inner_.Close(); }

 private:
  store::Store& inner_;
  mutable std::mutex mu_;
  std::vector<std::pair<store::WriteFn, store::DoneFn>> held_;  // GUARDED_BY(mu_)
};

}  // namespace drover::testing
