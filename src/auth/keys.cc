#include "auth/keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <mutex>

#include "common/json.h"
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

}  // namespace

KeyService::KeyService(store::Store& store, const Clock& clock, std::chrono::seconds cache_ttl)
    : store_(store), clock_(clock), ttl_(cache_ttl) {
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

std::string KeyService::NewSecret() { return "drv_" + RandomBase64Url(32); }

Result<std::shared_ptr<const Principal>> KeyService::Authenticate(std::string_view token) {
  if (token.empty() || token.size() > 512) return Status::Unauthenticated("invalid API key");
  Sha256Digest digest = Sha256(token);
  auto as_view = [](const Sha256Digest& d) {
    return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
  };
  auto now = clock_.Steady();
  uint64_t generation = 0;
  {
    std::shared_lock lock(mu_);
    auto it = cache_.find(digest);
    if (it != cache_.end() && it->second.expires > now &&
        ConstantTimeEqual(as_view(it->second.hash), as_view(digest))) {
      return it->second.principal;
    }
    generation = generation_;
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
  if (!s.ok()) return Status::Unavailable("cannot verify API key: " + s.message());
  if (!found || !ConstantTimeEqual(stored_hash, hash)) {
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
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.pop_back();
    page.next_cursor = page.items.back().id;
  }
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
  if (!s.ok()) return s;
  if (!created) return std::optional<std::string>{};
  return std::optional<std::string>(secret);
}

}  // namespace drover::auth
