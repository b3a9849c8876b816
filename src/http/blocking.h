#pragma once
// Blocking reads, Consul style: `?index=N&wait=30s` parks a read until a change of its topic
// passes index N (on this server or, through the store's notifications, on any server sharing
// the database), or until the wait ends; then the read runs and answers as usual, with the
// current index in X-Drover-Index. Wake-ups may be spurious (an unrelated change of the same
// topic): clients compare the index, as with Consul.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/message.h"
#include "store/store.h"

namespace drover::http {

struct BlockingParams {
  int64_t index = 0;
  std::chrono::milliseconds wait{std::chrono::minutes(5)};
};

// `?index=&wait=` of a read: nullopt without `index`; InvalidArgument for a bad value. `wait`
// defaults to 5m and is capped at 10m.
Result<std::optional<BlockingParams>> ReadBlockingParams(const Request& req);

class Waiters;

// Runs `read` at once, or — with ?index= — once a change of `topic` passes that index (or the
// wait ends, or the client goes away). Answers 400 itself for bad ?index=/&wait= values.
void ServeRead(Waiters& waiters, std::string_view topic, const Request& req,
               const Responder& respond, std::function<void()> read);

// Answers `r` with `index` as X-Drover-Index and, for a 200, as the ETag ("<index>": the index
// moves on every change, so an unchanged index means an unchanged answer). `if_none_match` (the
// request's If-None-Match) matching it gets 304 without a body instead.
void RespondWithIndex(const Responder& respond, std::string_view if_none_match, Response r,
                      int64_t index);

// Whether a request's If-None-Match names `etag` (exactly, weakly as W/"...", or with *).
bool EtagMatches(std::string_view if_none_match, std::string_view etag);

class Waiters {
 public:
  explicit Waiters(store::Store& store);
  ~Waiters();  // Shutdown()

  // Calls `ready` exactly once: at once when the store's index already passed `index`, else
  // after a committed change naming `topic` (or a resync) with a higher index, when `wait`
  // ends, or at Shutdown — on the caller's thread or the waiters' own thread.
  // Returns a ticket for Cancel (0 when `ready` already ran).
  uint64_t Wait(std::string topic, int64_t index, std::chrono::milliseconds wait,
                std::function<void()> ready);
  // For topics whose commits take no change index (log lines): how many changes of `topic`
  // (or resyncs) this server has seen. A reader takes the mark before it reads and waits with
  // WaitAfterMark for a change after it: a commit its read missed is announced after the mark.
  int64_t Mark(std::string_view topic);
  // As Wait, but released by the next change of `topic` once Mark(topic) has passed `mark`.
  uint64_t WaitAfterMark(std::string topic, int64_t mark, std::chrono::milliseconds wait,
                         std::function<void()> ready);
  // Where released reads run: `submit(ready)` takes it (true) or leaves it to run on the
  // waiters' thread (false, `ready` untouched). PostgreSQL servers hand them to the store pool.
  void SetExecutor(std::function<bool(std::function<void()>&)> submit);
  // Releases the parked read `ticket` now (its client went away); nothing if it already ran.
  void Cancel(uint64_t ticket);
  // Releases every parked read now (they answer with what they find) and makes later waits
  // return at once: a stopping server answers instead of holding connections.
  void Shutdown();
  // Parked reads, for tests and metrics.
  size_t parked() const;
  // True after Shutdown(): waits return at once, so callers must not wait again in a loop.
  bool stopped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::http
