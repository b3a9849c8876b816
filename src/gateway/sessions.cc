#include "gateway/sessions.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/random.h"

namespace drover::gateway {
namespace {

constexpr auto kCacheFor = std::chrono::seconds(5);
constexpr std::string_view kKeysTopic = "keys";       // auth/keys.h: every write that deletes keys
constexpr std::string_view kEndedTopic = "sessions";  // a session ended before its time

// What to run for a new login code on `scope`.
std::string_view OpenCommand(std::string_view scope) {
  return scope == kDashboardScope ? "drover ui" : "drover env open";
}

Status BadCode(std::string_view scope) {
  return Status::Unauthenticated(fmt::format(
      "the login code is unknown, used or expired: run `{}` again", OpenCommand(scope)));
}

}  // namespace

SessionService::SessionService(store::Store& store, const Clock& clock)
    : store_(store), clock_(clock) {
  // A deleted key ends its sessions at once on every server (not only after the cache).
  subscription_ = store_.Subscribe([this](const store::Change& c) {
    auto named = [&c](std::string_view t) {
      return std::find(c.topics.begin(), c.topics.end(), t) != c.topics.end();
    };
    if (c.resync || named(kKeysTopic) || named(kEndedTopic)) {
      std::lock_guard lock(mu_);
      cache_.clear();
    }
  });
}

SessionService::~SessionService() { store_.Unsubscribe(subscription_); }

void SessionService::Open(const http::Principal& caller, std::string tenant,
                          std::string environment, std::function<void(Result<Code>)> done) {
  auto out = std::make_shared<Code>();
  out->code = RandomHex(24);
  int64_t now = ToUnixMillis(clock_.Now());
  out->expires_at_ms = now + std::chrono::milliseconds(kCodeLifetime).count();
  store_.Write(
      [out, key = caller.key_id, tenant = std::move(tenant), env = std::move(environment),
       now](store::Tx& tx) -> Status {
        return tx
            .Exec(
                "INSERT INTO env_sessions (token_hash, kind, key_id, tenant, environment,"
                " created_at, expires_at) VALUES (?, 'code', ?, ?, ?, ?, ?)",
                {Sha256Hex(out->code), key, tenant, env, now, out->expires_at_ms})
            .status();
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

void SessionService::Redeem(std::string code, std::string environment,
                            std::function<void(Result<std::string>)> done) {
  auto token = std::make_shared<std::string>(RandomHex(32));
  auto made = std::make_shared<bool>(false);
  std::string scope = environment;
  int64_t now = ToUnixMillis(clock_.Now());
  store_.Write(
      [token, made, code = std::move(code), env = std::move(environment),
       now](store::Tx& tx) -> Status {
        *made = false;
        std::optional<std::pair<std::string, std::string>> owner;  // key, tenant
        int64_t expires = 0;
        std::string hash = Sha256Hex(code);
        DROVER_RETURN_IF_ERROR(
            tx.Query("SELECT key_id, tenant, expires_at FROM env_sessions WHERE token_hash = ? AND"
                     " kind = 'code' AND environment = ?",
                     {hash, env}, [&](const store::Row& r) {
                       owner.emplace(r.String(0), r.String(1));
                       expires = r.Int(2);
                     }));
        if (!owner) return BadCode(env);
        // Single use: gone whether or not it was still valid.
        DROVER_RETURN_IF_ERROR(
            tx.Exec("DELETE FROM env_sessions WHERE token_hash = ?", {hash}).status());
        if (expires <= now) return Status::Ok();  // committed as spent; refused below
        *made = true;
        return tx
            .Exec(
                "INSERT INTO env_sessions (token_hash, kind, key_id, tenant, environment,"
                " created_at, expires_at) VALUES (?, 'session', ?, ?, ?, ?, ?)",
                {Sha256Hex(*token), owner->first, owner->second, env, now,
                 now + std::chrono::milliseconds(kSessionLifetime).count()})
            .status();
      },
      [token, made, scope = std::move(scope), done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        if (!*made) return done(BadCode(scope));  // expired: spent, and no session
        done(*token);
      });
}

Result<std::shared_ptr<const http::Principal>> SessionService::Check(
    const std::string& token, const std::string& environment) {
  std::string hash = Sha256Hex(token);
  std::string key = hash + "\n" + environment;
  auto steady = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end() && it->second.until > steady) {
      if (!it->second.principal) return Status::Unauthenticated("the session has ended");
      return it->second.principal;
    }
  }
  std::shared_ptr<http::Principal> p;
  int64_t now = ToUnixMillis(clock_.Now());
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT k.id, k.name, k.role, k.tenant FROM env_sessions s JOIN api_keys k"
        " ON k.id = s.key_id WHERE s.token_hash = ? AND s.kind = 'session' AND"
        " s.environment = ? AND s.expires_at > ?",
        {hash, environment, now}, [&](const store::Row& r) {
          auto role = http::ParseRole(r.Text(2));
          if (!role) return;
          p = std::make_shared<http::Principal>();
          p->key_id = r.String(0);
          p->key_name = r.String(1);
          p->role = *role;
          p->tenant = r.String(3);
        });
  });
  if (!s.ok()) return s;
  std::lock_guard lock(mu_);
  if (cache_.size() > 10000) cache_.clear();  // bounded
  cache_[key] = {p, steady + kCacheFor};
  if (!p) {
    return Status::Unauthenticated(
        fmt::format("the session has ended: run `{}` again", OpenCommand(environment)));
  }
  return std::shared_ptr<const http::Principal>(std::move(p));
}

void SessionService::End(const std::string& token, const std::string& environment,
                         std::function<void(Status)> done) {
  std::string hash = Sha256Hex(token);
  {
    std::lock_guard lock(mu_);
    cache_.erase(hash + "\n" + environment);
  }
  store_.Write(
      [hash, environment](store::Tx& tx) -> Status {
        auto gone = tx.Exec(
            "DELETE FROM env_sessions WHERE token_hash = ? AND kind = 'session' AND"
            " environment = ?",
            {hash, environment});
        if (!gone.ok()) return gone.status();
        // Every server forgets what it cached of it now, not after the cache's seconds.
        return *gone > 0 ? tx.Notify(kEndedTopic) : Status::Ok();
      },
      std::move(done));
}

Result<int64_t> SessionService::Prune() {
  int64_t now = ToUnixMillis(clock_.Now());
  auto n = std::make_shared<int64_t>(0);
  Status s = store::WriteSync(store_, [n, now](store::Tx& tx) -> Status {
    auto r = tx.Exec("DELETE FROM env_sessions WHERE expires_at <= ?", {now});
    if (!r.ok()) return r.status();
    *n = *r;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return *n;
}

}  // namespace drover::gateway
