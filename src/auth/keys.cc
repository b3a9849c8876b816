#include "auth/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <mutex>

#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/random.h"
#include "events/change_log.h"

namespace drover::auth {
namespace {

constexpr std::string_view kSelect =
    "SELECT id, name, role, tenant, created_at, rate_rps, rate_burst, hash, environment, instance"
    " FROM api_keys";

// Rates are stored as milli-units to keep the schema integer-only.
KeyRecord ReadKey(const store::Row& r) {
  KeyRecord k;
  k.id = r.String(0);
  k.name = r.String(1);
  k.role = ParseRole(r.Text(2)).value_or(Role::kViewer);
  k.tenant = r.String(3);
  k.created_at_ms = r.Int(4);
  if (!r.IsNull(5)) k.rate_rps = static_cast<double>(r.Int(5)) / 1000.0;
  if (!r.IsNull(6)) k.rate_burst = static_cast<double>(r.Int(6)) / 1000.0;
  if (!r.IsNull(8)) k.environment = r.String(8);
  if (!r.IsNull(9)) k.instance = r.String(9);
  return k;
}

store::Param OptMilli(const std::optional<double>& v) {
  if (!v) return nullptr;
  return static_cast<int64_t>(*v * 1000.0);
}

store::Param OptText(const std::string& v) {
  if (v.empty()) return nullptr;
  return std::string_view(v);
}

Status InsertKey(store::Tx& tx, const KeyRecord& k, const std::string& hash) {
  auto r = tx.Exec(
      "INSERT INTO api_keys (id, name, role, tenant, hash, rate_rps, rate_burst, created_at,"
      " environment, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {k.id, k.name, RoleName(k.role), k.tenant, hash, OptMilli(k.rate_rps), OptMilli(k.rate_burst),
       k.created_at_ms, OptText(k.environment), OptText(k.instance)});
  if (!r.ok() && r.status().code() == Status::Code::kConflict) {
    return Status::Conflict("a key with this secret already exists");
  }
  return r.status();
}

// The first 8 bytes of a key's SHA-256, from its digest or its stored hex hash.
uint64_t Prefix(const Sha256Digest& d) {
  uint64_t p;
  std::memcpy(&p, d.data(), sizeof p);
  return p;
}
std::optional<uint64_t> Prefix(std::string_view hex) {
  if (hex.size() < 16) return std::nullopt;
  Sha256Digest d{};
  for (size_t i = 0; i < 8; ++i) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return Prefix(d);
}

// How long after expiry a cached key still serves while the store fails, and how long after a
// failed read the store is not asked again for a key it has an expired entry of.
constexpr auto kStaleFor = std::chrono::hours(1);
constexpr auto kTroubleFor = std::chrono::seconds(5);

constexpr size_t kRandomChars = 32;  // 24 bytes
constexpr size_t kMacChars = 11;     // 8 bytes
constexpr size_t kSignedSize = 4 + kRandomChars + kMacChars;

std::string Mac(std::string_view key, std::string_view body) {
  auto mac = HmacSha256(key, body);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), 8));
}

}  // namespace

KeyService::KeyService(store::Store& store, const Clock& clock, std::chrono::seconds cache_ttl)
    : store_(store), clock_(clock), ttl_(cache_ttl), budget_refilled_(clock.Steady()) {
  if (Status s = LoadSigningKey(); !s.ok()) {
    // Keys made here are then unsigned: they still work, looked up like keys from before
    // signing. Logged: another server's signed keys are refused here only within the budget.
    LogError("cannot load the key-signing secret: {}", s.ToString());
  }
  subscription_ = store_.Subscribe([this](const store::Change& c) {
    if (c.resync || std::find(c.topics.begin(), c.topics.end(), kTopic) != c.topics.end()) {
      Revoked();
    }
  });
}

KeyService::~KeyService() { store_.Unsubscribe(subscription_); }

void KeyService::Revoked() {
  std::unique_lock lock(mu_);
  cache_.clear();
  ++generation_;
}

Status KeyService::LoadSigningKey() {
  // Of several servers starting at once, the first insert wins and every one reads it.
  std::string fresh = RandomBase64Url(32);
  DROVER_RETURN_IF_ERROR(store::WriteSync(store_, [&](store::Tx& tx) {
    return tx
        .Exec(
            "INSERT INTO settings (name, value) VALUES ('key_signing_secret', ?)"
            " ON CONFLICT (name) DO NOTHING",
            {fresh})
        .status();
  }));
  std::string key;
  std::unordered_set<uint64_t> prefixes;
  DROVER_RETURN_IF_ERROR(store_.Read([&](store::Tx& tx) {
    DROVER_RETURN_IF_ERROR(tx.Query("SELECT value FROM settings WHERE name = 'key_signing_secret'",
                                    {}, [&](const store::Row& r) { key = r.String(0); }));
    return tx.Query("SELECT hash FROM api_keys", {}, [&](const store::Row& r) {
      if (auto p = Prefix(r.Text(0))) prefixes.insert(*p);
    });
  }));
  if (key.empty()) return Status::Internal("the key-signing secret is missing");
  std::unique_lock lock(mu_);
  signing_key_ = std::move(key);
  unsigned_keys_ = std::move(prefixes);
  return Status::Ok();
}

std::string KeyService::NewSecret() const {
  std::string body = "drv_" + RandomBase64Url(24);
  if (signing_key_.empty()) return body + RandomBase64Url(8);  // unsigned: see the constructor
  return body + Mac(signing_key_, body);
}

bool KeyService::WorthALookup(std::string_view token, const Sha256Digest& digest) {
  auto now = clock_.Steady();
  bool is_signed = token.size() == kSignedSize && token.starts_with("drv_") &&
                   !signing_key_.empty() &&
                   ConstantTimeEqual(token.substr(4 + kRandomChars),
                                     Mac(signing_key_, token.substr(0, 4 + kRandomChars)));
  std::unique_lock lock(mu_);
  if (is_signed) {
    auto it = unknown_.find(digest);
    if (it == unknown_.end()) return true;
    if (it->second > now) return false;
    unknown_.erase(it);
    return true;
  }
  if (unsigned_keys_.contains(Prefix(digest))) return true;
  constexpr double kPerSecond = 20;
  unsigned_budget_ = std::min(
      kPerSecond, unsigned_budget_ +
                      kPerSecond * std::chrono::duration<double>(now - budget_refilled_).count());
  budget_refilled_ = now;
  if (unsigned_budget_ < 1) return false;
  unsigned_budget_ -= 1;
  return true;
}

std::shared_ptr<const Principal> KeyService::Cached(std::string_view token) const {
  if (token.empty() || token.size() > 512) return nullptr;
  Sha256Digest digest = Sha256(token);
  auto now = clock_.Steady();
  std::shared_lock lock(mu_);
  auto it = cache_.find(digest);
  if (it == cache_.end() || it->second.expires <= now) return nullptr;
  return it->second.principal;
}

Result<std::shared_ptr<const Principal>> KeyService::Authenticate(std::string_view token) {
  if (token.empty() || token.size() > 512) return Status::Unauthenticated("invalid API key");
  Sha256Digest digest = Sha256(token);
  auto as_view = [](const Sha256Digest& d) {
    return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
  };
  auto now = clock_.Steady();
  uint64_t generation = 0;
  // An expired entry, for while the store does not answer (stale-if-error): nobody can revoke
  // a key then either, and requests answered from memory keep being answered.
  std::shared_ptr<const Principal> stale;
  {
    std::shared_lock lock(mu_);
    auto it = cache_.find(digest);
    if (it != cache_.end() && ConstantTimeEqual(as_view(it->second.hash), as_view(digest))) {
      if (it->second.expires > now) return it->second.principal;
      if (now < it->second.expires + kStaleFor) stale = it->second.principal;
    }
    generation = generation_;
  }
  if (stale && now < store_trouble_until_.load(std::memory_order_relaxed)) return stale;
  if (!WorthALookup(token, digest)) {
    unknown_without_read_.fetch_add(1, std::memory_order_relaxed);
    return Status::Unauthenticated("invalid API key");
  }
  std::string hash = DigestHex(digest);
  std::optional<KeyRecord> found;
  std::string stored_hash;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kSelect) + " WHERE hash = ?", {hash}, [&](const store::Row& r) {
      found = ReadKey(r);
      stored_hash = r.String(7);
    });
  });
  if (!s.ok()) {
    // Answer from memory for a while rather than wait on the store for every request.
    store_trouble_until_.store(now + kTroubleFor, std::memory_order_relaxed);
    if (stale) return stale;
    return Status::Unavailable("cannot verify API key: " + s.message());
  }
  if (!found || !ConstantTimeEqual(stored_hash, hash)) {
    std::unique_lock lock(mu_);
    if (unknown_.size() >= 10000) unknown_.clear();  // bounded: a flood only costs a reread
    unknown_[digest] = now + ttl_;
    return Status::Unauthenticated("invalid API key");
  }
  auto p = std::make_shared<const Principal>(
      Principal{found->id, found->name, found->role, found->tenant, found->rate_rps,
                found->rate_burst, found->environment, found->instance});
  std::unique_lock lock(mu_);
  // A revocation committed while the row was read may have been read too late to see it: then
  // this answer stands for this request only and is not cached.
  if (generation == generation_) {
    if (cache_.size() > 100000) cache_.clear();  // bound memory against key churn
    cache_[digest] = CacheEntry{digest, p, now + ttl_};
  }
  return std::shared_ptr<const Principal>(p);
}

void KeyService::Create(const Principal& caller, KeySpec spec,
                        std::function<void(Result<NewKey>)> done) {
  if (spec.tenant.empty()) spec.tenant = caller.tenant;
  if (caller.role != Role::kAdmin) {
    if (spec.tenant != caller.tenant) {
      return done(Status::PermissionDenied("only an admin key can create keys for another tenant"));
    }
    if (spec.role == Role::kAdmin || spec.role == Role::kAgent) {
      return done(Status::PermissionDenied(
          fmt::format("only an admin key can create {} keys", RoleName(spec.role))));
    }
  }
  CreateWithSecret(std::move(spec), NewSecret(), std::move(done));
}

void KeyService::CreateWithSecret(KeySpec spec, std::string secret,
                                  std::function<void(Result<NewKey>)> done) {
  std::vector<FieldError> errors;
  if (!IsValidName(spec.name)) errors.push_back({"name", std::string(kNameRule)});
  if (!IsValidName(spec.tenant)) errors.push_back({"tenant", std::string(kNameRule)});
  if (spec.rate_rps && (*spec.rate_rps < 0 || *spec.rate_rps > 1e9)) {
    errors.push_back({"rate_limit.rps", "must be between 0 (unlimited) and 1e9"});
  }
  if (spec.rate_burst && (*spec.rate_burst < 1 || *spec.rate_burst > 1e9)) {
    errors.push_back({"rate_limit.burst", "must be between 1 and 1e9"});
  }
  if (!errors.empty()) return done(Status::Validation(std::move(errors)));
  auto key = std::make_shared<NewKey>();
  key->record = {
      "k_" + RandomHex(8), spec.name,       spec.role, spec.tenant, ToUnixMillis(clock_.Now()),
      spec.rate_rps,       spec.rate_burst, "",        ""};
  key->secret = std::move(secret);
  std::string hash = Sha256Hex(key->secret);
  if (auto p = Prefix(hash)) {
    std::unique_lock lock(mu_);
    unsigned_keys_.insert(*p);  // harmless for a signed one; needed for a given secret
  }
  store_.Write(
      [key, hash](store::Tx& tx) {
        DROVER_RETURN_IF_ERROR(InsertKey(tx, key->record, hash));
        std::string summary = "{\"name\":";
        AppendJsonString(summary, key->record.name);
        summary += ",\"role\":";
        AppendJsonString(summary, RoleName(key->record.role));
        summary += '}';
        return events::Record(tx, {key->record.tenant, "key", key->record.id, "created", summary});
      },
      [key, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*key));
      });
}

Result<KeyPage> KeyService::List(const Principal& caller, std::optional<std::string> tenant,
                                 std::string_view cursor, int limit) {
  if (caller.role != Role::kAdmin) tenant = caller.tenant;
  KeyPage page;
  std::string sql(kSelect);
  sql += tenant ? " WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
                : " WHERE id > ? ORDER BY id LIMIT ?";
  Status s = store_.Read([&](store::Tx& tx) {
    auto on_row = [&](const store::Row& r) { page.items.push_back(ReadKey(r)); };
    if (tenant) return tx.Query(sql, {*tenant, cursor, int64_t{limit + 1}}, on_row);
    return tx.Query(sql, {cursor, int64_t{limit + 1}}, on_row);
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return last.id; });
  return page;
}

void KeyService::Delete(const Principal& caller, std::string id, std::function<void(Status)> done) {
  auto admin = caller.role == Role::kAdmin;
  auto tenant = caller.tenant;
  store_.Write(
      [id, admin, tenant](store::Tx& tx) -> Status {
        std::optional<std::string> owner;  // the deleted key's tenant
        auto on_row = [&](const store::Row& r) { owner = r.String(0); };
        Status s =
            admin ? tx.Query("DELETE FROM api_keys WHERE id = ? RETURNING tenant", {id}, on_row)
                  : tx.Query("DELETE FROM api_keys WHERE id = ? AND tenant = ? RETURNING tenant",
                             {id, tenant}, on_row);
        if (!s.ok()) return s;
        if (!owner) return Status::NotFound("no key with id '" + id + "'");
        DROVER_RETURN_IF_ERROR(events::Record(tx, {*owner, "key", id, "deleted", ""}));
        return tx.Notify(kTopic);
      },
      [this, done = std::move(done)](Status s) {
        if (s.ok()) Revoked();
        done(std::move(s));
      });
}

Status KeyService::Insert(store::Tx& tx, const KeyRecord& record, std::string_view secret) {
  return InsertKey(tx, record, Sha256Hex(secret));
}

Status KeyService::RevokeInstance(store::Tx& tx, const std::string& id) {
  auto n = tx.Exec("DELETE FROM api_keys WHERE instance = ?", {id});
  if (!n.ok()) return n.status();
  return *n > 0 ? tx.Notify(kTopic) : Status::Ok();
}

Result<std::optional<std::string>> KeyService::Bootstrap(std::optional<std::string> token) {
  if (token && token->size() < 16) {
    return Status::InvalidArgument("DROVER_BOOTSTRAP_TOKEN must be at least 16 characters");
  }
  std::string secret = token ? *token : NewSecret();
  KeyRecord record{
      "k_" + RandomHex(8), "bootstrap-admin", Role::kAdmin, "default", ToUnixMillis(clock_.Now()),
      std::nullopt,        std::nullopt,      "",           ""};
  bool created = false;
  // Check and insert in one transaction, serialized by a no-op update of the index counter
  // (a row lock on PostgreSQL until commit): of several servers starting at once on an empty
  // database, exactly one creates the key.
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    created = false;
    auto lock = tx.Exec("UPDATE counters SET value = value WHERE name = 'index'");
    if (!lock.ok()) return lock.status();
    auto n = tx.QueryInt("SELECT COUNT(*) FROM api_keys");
    if (!n.ok()) return n.status();
    if (*n > 0) return Status::Ok();
    created = true;
    return InsertKey(tx, record, Sha256Hex(secret));
  });
  if (s.ok() && created) {
    std::unique_lock lock(mu_);
    unsigned_keys_.insert(Prefix(Sha256(secret)));
  }
  if (!s.ok()) return s;
  if (!created) return std::optional<std::string>{};
  return std::optional<std::string>(secret);
}

}  // namespace drover::auth
