#include "http/blocking.h"

#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/duration.h"

namespace drover::http {

Result<std::optional<BlockingParams>> ReadBlockingParams(const Request& req) {
  auto index = req.Query("index");
  if (!index) return std::optional<BlockingParams>{};
  BlockingParams p;
  auto [end, ec] = std::from_chars(index->data(), index->data() + index->size(), p.index);
  if (ec != std::errc() || end != index->data() + index->size() || p.index < 0) {
    return Status::InvalidArgument(
        "query parameter 'index' must be a non-negative integer (an X-Drover-Index value)");
  }
  if (auto w = req.Query("wait")) {
    auto d = ParseDuration(*w);
    if (!d || d->count() <= 0) {
      return Status::InvalidArgument("query parameter 'wait' must be a duration like 30s or 5m");
    }
    p.wait = std::min<std::chrono::milliseconds>(*d, std::chrono::minutes(10));
  }
  return std::optional<BlockingParams>(p);
}

void ServeRead(Waiters& waiters, std::string_view topic, const Request& req,
               const Responder& respond, std::function<void()> read) {
  auto blocking = ReadBlockingParams(req);
  if (!blocking.ok()) return respond(Response::Problem(blocking.status()));
  if (!*blocking) return read();
  uint64_t ticket =
      waiters.Wait(std::string(topic), (*blocking)->index, (*blocking)->wait, std::move(read));
  if (ticket) req.OnCancel([&waiters, ticket] { waiters.Cancel(ticket); });
}

bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match.empty()) return false;
  if (if_none_match == "*" || if_none_match == etag) return true;
  return if_none_match.starts_with("W/") && if_none_match.substr(2) == etag;
}

void RespondWithIndex(const Responder& respond, std::string_view if_none_match, Response r,
                      int64_t index) {
  std::string etag = "\"" + std::to_string(index) + "\"";
  bool ok = r.status == 200;
  if (ok && EtagMatches(if_none_match, etag)) {
    r = Response();
    r.status = 304;
  }
  if (ok) r.AddHeader("ETag", etag);
  r.AddHeader("X-Drover-Index", std::to_string(index));
  respond(std::move(r));
}

struct Waiters::Impl {
  using Clock = std::chrono::steady_clock;
  struct Parked {
    uint64_t ticket;
    std::string topic;
    int64_t index;  // a change index, or a mark when `by_mark`
    std::function<void()> ready;
    bool by_mark = false;
  };

  explicit Impl(store::Store& s) : store(s) {
    sub = store.Subscribe([this](const store::Change& c) { OnChange(c); });
    thread = std::thread([this] { Loop(); });
  }

  // Called for every committed batch: with nothing parked it costs a lock and no wake-up. (A
  // read that parks later saw LastIndex() at or past this change, so it would not release it.)
  void OnChange(const store::Change& c) {
    std::lock_guard lock(mu);
    for (auto& [topic, mark] : marks) {
      if (c.resync || std::find(c.topics.begin(), c.topics.end(), topic) != c.topics.end()) {
        ++mark;
      }
    }
    if (parked.empty()) return;
    changes.push_back(c);
    cv.notify_one();
  }

  // Takes out every parked read that `c` releases.
  void Release(const store::Change& c, std::vector<std::function<void()>>& out) {
    for (auto it = parked.begin(); it != parked.end();) {
      const Parked& p = it->second;
      bool topic =
          c.resync || std::find(c.topics.begin(), c.topics.end(), p.topic) != c.topics.end();
      bool passed = p.by_mark ? MarkOf(p.topic) > p.index : c.index > p.index;
      if (topic && passed) {
        out.push_back(std::move(it->second.ready));
        it = parked.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Loop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      if (parked.empty()) {
        cv.wait(lock, [&] { return stopping || !changes.empty() || !parked.empty(); });
      } else {
        // A copy: Cancel may erase the entry meanwhile. A new earlier deadline re-arms the wait.
        auto deadline = parked.begin()->first;
        rearm = false;
        cv.wait_until(lock, deadline, [&] { return stopping || !changes.empty() || rearm; });
      }
      std::vector<std::function<void()>> ready;
      for (const auto& c : changes) Release(c, ready);
      changes.clear();
      auto now = Clock::now();
      while (!parked.empty() && (stopping || parked.begin()->first <= now)) {
        ready.push_back(std::move(parked.begin()->second.ready));
        parked.erase(parked.begin());
      }
      auto submit = executor;
      lock.unlock();
      // Each runs its read and answers: on the executor's threads when there is one (a slow
      // store read then holds up no other released read), else here.
      for (auto& r : ready) {
        if (!submit || !submit(r)) r();
      }
      lock.lock();
    }
  }

  int64_t MarkOf(std::string_view topic) {
    auto it = marks.find(topic);
    return it == marks.end() ? 0 : it->second;
  }

  // Parks `ready` unless it is ready now (then false).
  bool Park(std::string& topic, int64_t index, bool by_mark, std::chrono::milliseconds wait,
            std::function<void()>& ready, uint64_t* ticket) {
    std::lock_guard lock(mu);
    // Checked under the lock: a change arriving after this check is queued for the loop.
    bool passed = by_mark ? MarkOf(topic) > index : store.LastIndex() > index;
    if (stopping || passed) return false;
    *ticket = ++last_ticket;
    parked.emplace(Clock::now() + wait,
                   Parked{*ticket, std::move(topic), index, std::move(ready), by_mark});
    rearm = true;
    cv.notify_one();
    return true;
  }

  store::Store& store;
  int sub = 0;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                                 // GUARDED_BY(mu)
  uint64_t last_ticket = 0;                              // GUARDED_BY(mu)
  std::function<bool(std::function<void()>&)> executor;  // GUARDED_BY(mu)
  bool rearm = false;  // GUARDED_BY(mu): a wait was parked, so the earliest deadline may be new
  std::multimap<Clock::time_point, Parked> parked;    // GUARDED_BY(mu): by deadline
  std::vector<store::Change> changes;                 // GUARDED_BY(mu): not yet applied
  std::map<std::string, int64_t, std::less<>> marks;  // GUARDED_BY(mu): Mark()ed topics
};

Waiters::Waiters(store::Store& store) : impl_(std::make_unique<Impl>(store)) {}

Waiters::~Waiters() {
  Shutdown();
  impl_->store.Unsubscribe(impl_->sub);
}

uint64_t Waiters::Wait(std::string topic, int64_t index, std::chrono::milliseconds wait,
                       std::function<void()> ready) {
  uint64_t ticket = 0;
  if (impl_->Park(topic, index, false, wait, ready, &ticket)) return ticket;
  ready();
  return 0;
}

int64_t Waiters::Mark(std::string_view topic) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->marks.find(topic);
  if (it == impl_->marks.end()) it = impl_->marks.emplace(std::string(topic), 0).first;
  return it->second;
}

uint64_t Waiters::WaitAfterMark(std::string topic, int64_t mark, std::chrono::milliseconds wait,
                                std::function<void()> ready) {
  uint64_t ticket = 0;
  if (impl_->Park(topic, mark, true, wait, ready, &ticket)) return ticket;
  ready();
  return 0;
}

void Waiters::SetExecutor(std::function<bool(std::function<void()>&)> submit) {
  std::lock_guard lock(impl_->mu);
  impl_->executor = std::move(submit);
}

void Waiters::Cancel(uint64_t ticket) {
  std::function<void()> ready;
  {
    std::lock_guard lock(impl_->mu);
    // A linear scan: cancellations are rare (a client that left) and parked reads are few.
    for (auto it = impl_->parked.begin(); it != impl_->parked.end(); ++it) {
      if (it->second.ticket == ticket) {
        ready = std::move(it->second.ready);
        impl_->parked.erase(it);
        break;
      }
    }
  }
  if (ready) ready();
}

void Waiters::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    impl_->cv.notify_one();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  // The loop answered what was parked on its way out; nothing parks after `stopping`.
  std::vector<std::function<void()>> rest;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [deadline, p] : impl_->parked) rest.push_back(std::move(p.ready));
    impl_->parked.clear();
  }
  for (auto& r : rest) r();
}

bool Waiters::stopped() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stopping;
}

size_t Waiters::parked() const {
  std::lock_guard lock(impl_->mu);
  return impl_->parked.size();
}

}  // namespace drover::http
