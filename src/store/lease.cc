#include "store/lease.h"

#include <fmt/format.h>

#include <optional>

namespace drover::store {
namespace {

constexpr std::string_view kSelect =
    "SELECT name, holder, generation, expires_at FROM leases WHERE name = ?";

std::optional<Lease> ReadLease(Tx& tx, const std::string& name, Status* s) {
  std::optional<Lease> out;
  *s = tx.Query(kSelect, {name}, [&](const Row& r) {
    out = Lease{r.String(0), r.String(1), r.Int(2), r.Int(3)};
  });
  return out;
}

Status Lost(const Lease& l) {
  return Status::Conflict(fmt::format("lease '{}' generation {} is no longer held by {}", l.name,
                                      l.generation, l.holder));
}

}  // namespace

Result<Lease> Leases::Acquire(const std::string& name, const std::string& holder,
                              std::chrono::milliseconds ttl) {
  Lease out;
  Status s = WriteSync(store_, [&](Tx& tx) -> Status {
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    int64_t until = *now + ttl.count();
    // Free: a new row. Released or expired: a new generation. Ours: extended.
    auto n = tx.Exec(
        "INSERT INTO leases (name, holder, generation, expires_at) VALUES (?, ?, 1, ?)"
        " ON CONFLICT (name) DO NOTHING",
        {name, holder, until});
    if (n.ok() && *n == 0) {
      n = tx.Exec(
          "UPDATE leases SET holder = ?, generation = generation + 1, expires_at = ?"
          " WHERE name = ? AND expires_at <= ?",
          {holder, until, name, *now});
    }
    if (n.ok() && *n == 0) {
      n = tx.Exec(
          "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?",
          {until, name, holder, *now});
    }
    if (!n.ok()) return n.status();
    Status rs;
    auto cur = ReadLease(tx, name, &rs);
    if (!rs.ok()) return rs;
    if (!cur) return Status::Internal("lease row vanished");
    if (*n == 0) {
      return Status::Conflict(fmt::format("lease '{}' is held by {} for {} ms more", name,
                                          cur->holder, cur->expires_at - *now));
    }
    out = *cur;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<Lease> Leases::Renew(const Lease& lease, std::chrono::milliseconds ttl) {
  Lease out = lease;
  Status s = WriteSync(store_, [&](Tx& tx) -> Status {
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    auto n = tx.Exec(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND generation = ?"
        " AND expires_at > ?",
        {*now + ttl.count(), lease.name, lease.holder, lease.generation, *now});
    if (!n.ok()) return n.status();
    if (*n == 0) return Lost(lease);
    out.expires_at = *now + ttl.count();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<std::optional<Lease>>> Leases::RenewAll(const std::vector<Lease>& leases,
                                                           std::chrono::milliseconds ttl) {
  std::vector<std::optional<Lease>> out;
  Status s = WriteSync(store_, [&](Tx& tx) -> Status {
    out.clear();  // a retried transaction starts over
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    for (const auto& lease : leases) {
      auto n = tx.Exec(
          "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND generation = ?"
          " AND expires_at > ?",
          {*now + ttl.count(), lease.name, lease.holder, lease.generation, *now});
      if (!n.ok()) return n.status();
      if (*n == 0) {
        out.emplace_back();
        continue;
      }
      out.emplace_back(lease)->expires_at = *now + ttl.count();
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status Leases::Release(const Lease& lease) {
  return WriteSync(store_, [&](Tx& tx) -> Status {
    // Keeps the row: generations must never repeat.
    return tx
        .Exec("UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND generation = ?",
              {lease.name, lease.holder, lease.generation})
        .status();
  });
}

Result<std::vector<Lease>> Leases::List(const std::string& prefix) {
  std::vector<Lease> out;
  std::string hi = prefix + "\x7f";
  Status s = store_.Read([&](Tx& tx) {
    return tx.Query(
        "SELECT name, holder, generation, expires_at FROM leases WHERE name >= ? AND name < ?"
        " ORDER BY name",
        {prefix, hi}, [&](const Row& r) {
          out.push_back({r.String(0), r.String(1), r.Int(2), r.Int(3)});
        });
  });
  if (!s.ok()) return s;
  return out;
}

Status Leases::Fence(Tx& tx, const Lease& lease) {
  auto now = tx.NowMillis();
  if (!now.ok()) return now.status();
  // A no-op update: it matches only while the lease is ours, and (PostgreSQL) row-locks it.
  auto n = tx.Exec(
      "UPDATE leases SET expires_at = expires_at WHERE name = ? AND holder = ? AND generation = ?"
      " AND expires_at > ?",
      {lease.name, lease.holder, lease.generation, *now});
  if (!n.ok()) return n.status();
  return *n == 1 ? Status::Ok() : Lost(lease);
}

}  // namespace drover::store
