#pragma once
// Browser sessions for the environment proxy (docs/gateway.md): browsers cannot send bearer
// keys, so `drover env open NAME` asks for a single-use login code (valid a minute); the
// browser's first visit to /env/NAME/?drover_code=CODE trades it for a session cookie scoped to
// /env/NAME/ (HttpOnly, SameSite=Strict, 12 hours). A session acts as the key that opened it
// and ends when that key is deleted. The dashboard's sessions are the same, scoped to
// kDashboardScope. Secrets are stored as SHA-256 hashes only. Thread-safe.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "http/principal.h"
#include "store/store.h"

namespace drover::gateway {

inline constexpr std::string_view kSessionCookie = "drover_session";
inline constexpr std::string_view kCodeParameter = "drover_code";
inline constexpr auto kCodeLifetime = std::chrono::minutes(1);
inline constexpr auto kSessionLifetime = std::chrono::hours(12);
// The scope of dashboard sessions (`drover ui`, docs/dashboard.md) where environment sessions
// name their environment: no environment name has a slash.
inline constexpr std::string_view kDashboardScope = "/ui";

class SessionService {
 public:
  SessionService(store::Store& store, const Clock& clock);
  ~SessionService();

  struct Code {
    std::string code;
    int64_t expires_at_ms = 0;
  };
  // A login code for `caller`'s environment `environment` (in `tenant`, which the caller
  // acts in; the environment's existence is the caller's to check).
  void Open(const http::Principal& caller, std::string tenant, std::string environment,
            std::function<void(Result<Code>)> done);
  // Trades a code for a session token (the code is gone either way); Unauthenticated when the
  // code is unknown, used, expired or for another environment.
  void Redeem(std::string code, std::string environment,
              std::function<void(Result<std::string>)> done);
  // The caller a session token stands for on `environment`; Unauthenticated when there is no
  // such session (expired, or its key deleted). Cached for a few seconds.
  Result<std::shared_ptr<const http::Principal>> Check(const std::string& token,
                                                       const std::string& environment);
  // Ends the session `token` on `environment` (nothing when there is none).
  void End(const std::string& token, const std::string& environment,
           std::function<void(Status)> done);
  // Removes expired codes and sessions; how many.
  Result<int64_t> Prune();

 private:
  store::Store& store_;
  const Clock& clock_;
  int subscription_ = -1;
  struct Cached {
    std::shared_ptr<const http::Principal> principal;
    std::chrono::steady_clock::time_point until;
  };
  std::mutex mu_;
  std::map<std::string, Cached> cache_;  // GUARDED_BY(mu_): by token hash + environment
};

}  // namespace drover::gateway
