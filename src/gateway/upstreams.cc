#include "gateway/upstreams.h"

#include <algorithm>

namespace drover::gateway {

uint64_t StableHash(std::string_view a, std::string_view b) {
  uint64_t h = 14695981039346656037ULL;
  for (std::string_view s : {a, std::string_view("\n", 1), b}) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  // A final mix: FNV's low bits alone spread short keys poorly.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void UpstreamSet::Set(const std::vector<UpstreamUrl>& urls, bool ready) {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Upstream>> next;
  next.reserve(urls.size());
  for (const auto& url : urls) {
    auto it = std::find_if(members_.begin(), members_.end(),
                           [&](const auto& m) { return m->url.text == url.text; });
    if (it != members_.end()) {
      next.push_back(*it);
    } else {
      auto u = std::make_shared<Upstream>();
      u->url = url;
      u->ready = ready;
      next.push_back(std::move(u));
    }
  }
  members_ = std::move(next);
}

void UpstreamSet::SetReady(const std::string& url, bool ready) {
  std::lock_guard lock(mu_);
  for (auto& m : members_) {
    if (m->url.text == url) m->ready = ready;
  }
}

std::shared_ptr<Upstream> UpstreamSet::Pick(Balance balance, std::string_view hash_key,
                                            const std::vector<const Upstream*>& tried,
                                            SteadyTime now) {
  std::lock_guard lock(mu_);
  // Candidates: ready and not ejected, not tried yet; else ready and not ejected (a retry may
  // go back to one); else — every ready one ejected — the one whose ejection ends first.
  thread_local std::vector<Upstream*> pool;  // scratch, reused: no allocation per request
  pool.clear();
  auto untried = [&](const Upstream* u) {
    return std::find(tried.begin(), tried.end(), u) == tried.end();
  };
  for (auto& m : members_) {
    if (Eligible(*m, now) && untried(m.get())) pool.push_back(m.get());
  }
  if (pool.empty()) {
    for (auto& m : members_) {
      if (Eligible(*m, now)) pool.push_back(m.get());
    }
  }
  if (pool.empty()) {
    Upstream* soonest = nullptr;
    for (auto& m : members_) {
      if (m->ready && (!soonest || m->ejected_until < soonest->ejected_until)) soonest = m.get();
    }
    if (soonest) pool.push_back(soonest);
  }
  if (pool.empty()) return nullptr;
  Upstream* chosen = nullptr;
  switch (balance) {
    case Balance::kRoundRobin:
      chosen = pool[next_++ % pool.size()];
      break;
    case Balance::kLeastRequest: {
      // The fewest in flight; ties broken round robin so equal ones share the load.
      size_t start = next_++ % pool.size();
      for (size_t i = 0; i < pool.size(); ++i) {
        Upstream* u = pool[(start + i) % pool.size()];
        if (!chosen || u->in_flight < chosen->in_flight) chosen = u;
      }
      break;
    }
    case Balance::kHash: {
      // Rendezvous hashing: the key keeps its upstream while that one stays, and only the
      // keys of an upstream that leaves move.
      uint64_t best = 0;
      for (Upstream* u : pool) {
        uint64_t score = StableHash(hash_key, u->url.text);
        if (!chosen || score > best) {
          chosen = u;
          best = score;
        }
      }
      break;
    }
  }
  ++chosen->in_flight;
  for (auto& m : members_) {
    if (m.get() == chosen) return m;
  }
  return nullptr;  // unreachable: chosen is a member
}

bool UpstreamSet::Done(const std::shared_ptr<Upstream>& u, bool ok, const EjectionPolicy& policy,
                       SteadyTime now) {
  std::lock_guard lock(mu_);
  --u->in_flight;
  if (ok) {
    u->consecutive_failures = 0;
    u->times_ejected = 0;
    return false;
  }
  ++u->consecutive_failures;
  if (u->consecutive_failures < policy.after || now < u->ejected_until) return false;
  // Never the last one standing: with every other member out, this one keeps its traffic.
  int others = 0;
  for (const auto& m : members_) {
    if (m.get() != u.get() && Eligible(*m, now)) ++others;
  }
  if (others == 0) return false;
  ++u->times_ejected;
  ++u->ejections_total;
  u->consecutive_failures = 0;
  u->ejected_until = now + policy.base * std::min<int64_t>(u->times_ejected, 10);
  return true;
}

std::vector<UpstreamSet::View> UpstreamSet::Snapshot(SteadyTime now) const {
  std::lock_guard lock(mu_);
  std::vector<View> out;
  for (const auto& m : members_) {
    out.push_back(
        {m->url.text, m->ready, now < m->ejected_until, m->in_flight, m->ejections_total});
  }
  return out;
}

size_t UpstreamSet::size() const {
  std::lock_guard lock(mu_);
  return members_.size();
}

}  // namespace drover::gateway
