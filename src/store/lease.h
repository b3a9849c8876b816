#pragma once
// Leases: named, expiring claims in the database, for work that exactly one server may do at a
// time (an environment's controller, the scheduler). Time is the database's clock, so servers
// with skewed clocks agree on expiry.
//
// Every takeover bumps the lease's generation, and generations never repeat (a released lease
// keeps its row). Work done under a lease is fenced: a write that calls Leases::Fence in its
// transaction commits only if its holder still has that generation unexpired, so a holder that
// was paused past its expiry (and replaced) can never overwrite its successor's work.
//
// Calls block on a store write: use them from controller threads, never on an I/O thread.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace drover::store {

struct Lease {
  std::string name;
  std::string holder;
  int64_t generation = 0;
  int64_t expires_at = 0;  // Unix ms, database clock; 0 once released
};

class Leases {
 public:
  explicit Leases(Store& store) : store_(store) {}

  // Takes `name` for `holder` when it is free, released or expired (a new generation), or
  // extends it when `holder` holds it already (same generation). Conflict when another holder
  // has it; the message says who and for how long.
  Result<Lease> Acquire(const std::string& name, const std::string& holder,
                        std::chrono::milliseconds ttl);
  // Extends a lease still held with the same generation; Conflict when it was lost (expired,
  // released or taken over): the holder must stop the work it guarded.
  Result<Lease> Renew(const Lease& lease, std::chrono::milliseconds ttl);
  // Renew for many leases in one transaction (one commit for a server's thousand environment
  // leases); per lease the renewed one, or nullopt when it was lost.
  Result<std::vector<std::optional<Lease>>> RenewAll(const std::vector<Lease>& leases,
                                                     std::chrono::milliseconds ttl);
  // Gives the lease up at once (others may take it without waiting for the expiry).
  Status Release(const Lease& lease);
  // Every lease whose name starts with `prefix`, by name.
  Result<std::vector<Lease>> List(const std::string& prefix);

  // Inside a write transaction: Conflict unless `lease` is still held, unexpired, with its
  // generation. On PostgreSQL it also locks the lease row until commit, so the lease cannot
  // change hands between the check and the commit.
  static Status Fence(Tx& tx, const Lease& lease);

 private:
  Store& store_;
};

}  // namespace drover::store
