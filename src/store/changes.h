#pragma once
// Subscribers to committed changes, shared by the backends: a registry that the backend's
// completion thread (SQLite) or notification listener (PostgreSQL) publishes to.
#include <mutex>
#include <utility>
#include <vector>

#include "store/store.h"

namespace drover::store {

class ChangeHub {
 public:
  int Subscribe(ChangeFn fn) {
    std::lock_guard lock(mu_);
    subs_.emplace_back(++last_id_, std::move(fn));
    return last_id_;
  }
  void Unsubscribe(int id) {
    std::lock_guard lock(mu_);
    std::erase_if(subs_, [id](const auto& s) { return s.first == id; });
  }
  // Calls every subscriber in subscription order. Holds the lock while calling, so that after
  // Unsubscribe returns the callback is never running or called again.
  void Publish(const Change& change) {
    std::lock_guard lock(mu_);
    for (auto& [id, fn] : subs_) fn(change);
  }
  bool empty() const {
    std::lock_guard lock(mu_);
    return subs_.empty();
  }

 private:
  mutable std::mutex mu_;
  int last_id_ = 0;
  std::vector<std::pair<int, ChangeFn>> subs_;  // GUARDED_BY(mu_)
};

}  // namespace drover::store
