#pragma once
// A Store wrapper whose writes, reads or pings can be made to fail, for testing the error paths
// (503 + Retry-After, readyz) on top of a real store. Thread-safe.
#include <atomic>

#include "store/store.h"

namespace drover::testing {

class FaultyStore final : public store::Store {
 public:
  explicit FaultyStore(store::Store& inner) : inner_(inner) {}

  std::atomic<bool> fail_writes{false};  // Write answers Unavailable without writing
  std::atomic<bool> fail_reads{false};   // Read answers Unavailable without reading
  std::atomic<bool> fail_ping{false};    // Ping answers Unavailable

  std::string_view Backend() const override { return inner_.Backend(); }
  void Write(store::WriteFn fn, store::DoneFn done) override {
    if (fail_writes) return done(Status::Unavailable("injected: storage unavailable"));
    inner_.Write(std::move(fn), std::move(done));
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
};

}  // namespace drover::testing
