#pragma once
// API keys: random 256-bit secrets shown once, stored as SHA-256 hashes, verified in constant
// time. Authenticate() is on every request's path, so verified keys are cached in memory for a
// few seconds. Every write that deletes keys notifies kTopic in its transaction; each server
// empties its cache when that change arrives (its own at commit, others' through the database's
// notifications), so a revoked key stops working everywhere within milliseconds.
// Thread-safe.
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/page.h"
#include "common/random.h"
#include "common/status.h"
#include "http/principal.h"
#include "store/store.h"

namespace drover::auth {

// The caller's identity types are the request's (http/principal.h); keys make them.
using http::ParseRole;
using http::Principal;
using http::Role;
using http::RoleName;

// Change topic of writes that delete keys (a key, an environment's or an instance's agent keys).
inline constexpr std::string_view kTopic = "keys";

struct KeyRecord {
  std::string id;
  std::string name;
  Role role = Role::kViewer;
  std::string tenant;
  int64_t created_at_ms = 0;
  std::optional<double> rate_rps;
  std::optional<double> rate_burst;
  std::string environment;  // agent keys of a joined instance: its environment and id
  std::string instance;
};

struct KeySpec {
  std::string name;
  Role role = Role::kUser;
  std::string tenant;
  std::optional<double> rate_rps;
  std::optional<double> rate_burst;
};

struct NewKey {
  KeyRecord record;
  std::string secret;  // shown once, never stored
};

using KeyPage = Page<KeyRecord>;

class KeyService final : public http::Authenticator {
 public:
  KeyService(store::Store& store, const Clock& clock,
             std::chrono::seconds cache_ttl = std::chrono::seconds(5));
  ~KeyService();

  // The caller behind a bearer token. Unauthenticated when unknown; Unavailable when the store
  // cannot be read — unless the key was cached within the last hour: then, while the store
  // fails, the cached answer stands (a stalled database does not lock every key out).
  Result<std::shared_ptr<const Principal>> Authenticate(std::string_view token) override;
  // A verified key cached and fresh (the common case on a hot path).
  std::shared_ptr<const Principal> Cached(std::string_view token) const override;

  // Creates a key as `caller`. PermissionDenied when a non-admin asks for another tenant or an
  // admin/agent role. `done` runs on the store's writer thread after the commit.
  void Create(const Principal& caller, KeySpec spec, std::function<void(Result<NewKey>)> done);
  // Creates a key with a given secret, bypassing caller checks (bootstrap, agent join).
  void CreateWithSecret(KeySpec spec, std::string secret, std::function<void(Result<NewKey>)> done);

  // Keys the caller may see (admin: all, or one tenant when `tenant` is set), ordered by id.
  Result<KeyPage> List(const Principal& caller, std::optional<std::string> tenant,
                       std::string_view cursor, int limit);

  // Deletes a key the caller may see; NotFound otherwise.
  void Delete(const Principal& caller, std::string id, std::function<void(Status)> done);

  // On an empty key table, creates an admin key in tenant "default" with `token` (or a random
  // secret) and returns the secret to print once. nullopt when keys already exist.
  Result<std::optional<std::string>> Bootstrap(std::optional<std::string> token);

  // A fresh secret: "drv_" + 43 base64url characters — 192 random bits and a 64-bit
  // signature under this database's key-signing secret, so a token that is not one of ours is
  // refused without a store read (docs/api.md, "Keys").
  std::string NewSecret() const;

  // Lookups of unknown tokens the server answered without reading the store (for /metrics).
  uint64_t unknown_without_read() const { return unknown_without_read_.load(); }

  // Inserts a key inside a caller's transaction (an agent key made by a join); the secret is
  // stored as its hash only.
  static Status Insert(store::Tx& tx, const KeyRecord& record, std::string_view secret);

  // Deletes the agent keys bound to instance `id` inside a caller's transaction (the instance
  // left or was terminated) and notifies kTopic when there were any.
  static Status RevokeInstance(store::Tx& tx, const std::string& id);

  // Empties the cache: keys were deleted. Writes that delete keys call it once committed, so
  // this server refuses them before the answer goes out (other servers: on kTopic).
  void Revoked();

 private:
  struct CacheEntry {
    Sha256Digest hash;
    std::shared_ptr<const Principal> principal;
    std::chrono::steady_clock::time_point expires;
  };
  struct DigestHash {
    size_t operator()(const Sha256Digest& d) const {
      size_t h;
      std::memcpy(&h, d.data(), sizeof h);  // a SHA-256 prefix is already uniform
      return h;
    }
  };
  // Whether the store might hold `token` (whose digest is `digest`); false answers 401 without
  // a read. REQUIRES: mu_ not held.
  bool WorthALookup(std::string_view token, const Sha256Digest& digest);
  Status LoadSigningKey();

  store::Store& store_;
  const Clock& clock_;
  const std::chrono::seconds ttl_;
  std::string signing_key_;  // this database's key-signing secret (settings table)
  // Prefixes of the stored keys' hashes, loaded at start: tokens without our signature (keys
  // from before signing, DROVER_BOOTSTRAP_TOKEN) are looked up only when theirs is here...
  std::unordered_set<uint64_t> unsigned_keys_;  // GUARDED_BY(mu_)
  // ... or within a small budget (a key made elsewhere since: rare), a token bucket.
  double unsigned_budget_ = 20;                            // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point budget_refilled_;  // GUARDED_BY(mu_)
  // Signed tokens the store did not have (revoked keys still in use), until they expire.
  std::unordered_map<Sha256Digest, std::chrono::steady_clock::time_point, DigestHash>
      unknown_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> unknown_without_read_{0};
  // Until then a failed key read is recent: expired cache entries answer without a read.
  std::atomic<std::chrono::steady_clock::time_point> store_trouble_until_{};
  int subscription_ = -1;
  mutable std::shared_mutex mu_;
  std::unordered_map<Sha256Digest, CacheEntry, DigestHash> cache_;  // GUARDED_BY(mu_)
  // Moves with every revocation: a lookup that began before one does not cache what it read.
  uint64_t generation_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace drover::auth
