#include "control/cc_api.h"

#include <fmt/format.h>

#include <mutex>
#include <unordered_map>

#include "common/clock.h"
#include "common/json.h"
#include "common/names.h"
#include "common/random.h"
#include "http/handler_util.h"

namespace drover::control {

bool IsHeaderSafe(std::string_view v) {
  if (v.size() > 8192) return false;
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  // Leading or trailing whitespace would be trimmed by the receiver: not the same value.
  return v.empty() ||
         (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

// One computed view: its body, headers and index, valid while the store's index stays at
// `computed_at` (any commit may change it; then it is computed again, keeping `index` when the
// body comes out the same).
struct View {
  int64_t computed_at = 0;
  int64_t index = 0;
  Sha256Digest digest{};
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

namespace {

class Views final : public ControlCenterViews {
 public:
  Views(VariableService& vars, AgentDefaultsFn defaults, store::Store& store,
        http::Waiters& waiters, ControlCenterOptions options)
      : vars_(vars),
        defaults_(std::move(defaults)),
        store_(store),
        waiters_(waiters),
        options_(std::move(options)) {}

  void Serve(std::string_view view, std::string prefix, http::Request& req,
             http::Responder respond) {
    auto tenant = http::RequestTenant(req);
    if (!tenant.ok()) return http::SendError(respond, tenant.status());
    std::string env(req.Query("environment").value_or(""));
    if (!env.empty() && !IsValidName(env)) {
      return http::SendError(respond, Status::InvalidArgument("query parameter 'environment' " +
                                                              std::string(kNameRule)));
    }
    const auto& caller = req.caller();
    if (caller.role == auth::Role::kAgent && !caller.environment.empty()) {
      if (env.empty()) env = caller.environment;
      if (env != caller.environment) {
        return http::SendError(
            respond, Status::PermissionDenied(fmt::format(
                         "this agent key reads environment '{}' only", caller.environment)));
      }
    }
    auto blocking = http::ReadBlockingParams(req);
    if (!blocking.ok()) return http::SendError(respond, blocking.status());
    auto q = std::make_shared<Query>();
    q->view = view;
    q->prefix = std::move(prefix);
    q->tenant = std::move(*tenant);
    q->env = std::move(env);
    q->if_none_match = std::string(req.Header("If-None-Match"));
    q->respond = std::move(respond);
    if (*blocking) {
      q->after = (*blocking)->index;
      q->deadline = std::chrono::steady_clock::now() + (*blocking)->wait;
    }
    Step(std::move(q));
  }

 private:
  struct Query {
    std::string_view view;
    std::string prefix, tenant, env, if_none_match;
    http::Responder respond;
    std::optional<int64_t> after;  // ?index=
    std::chrono::steady_clock::time_point deadline;
    int rechecks = 0;  // looks after a wake-up that found the set unchanged
  };

  // Answers when the view's index passed ?index= (or there is none, or time is up); otherwise
  // waits for the next change and looks again.
  void Step(std::shared_ptr<Query> q) {
    int64_t seen = store_.LastIndex();
    auto v = Compute(*q);
    if (!v.ok()) return http::SendError(q->respond, v.status());
    auto now = std::chrono::steady_clock::now();
    // A wait may return at once when commits keep coming: after many unchanged looks in a row,
    // answer (clients compare the index) rather than loop on one stack.
    if (q->after && (*v)->index <= *q->after && now < q->deadline && !waiters_.stopped() &&
        ++q->rechecks < 64) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(q->deadline - now);
      waiters_.Wait(std::string(kTopic), seen, left, [this, q] { Step(q); });
      return;
    }
    Respond(*q, **v);
  }

  void Respond(const Query& q, const View& v) {
    auto r = http::Response::Json(200, v.body);
    for (const auto& [k, val] : v.headers) r.AddHeader(k, val);
    if (options_.signing_key) {
      SignatureHeader h;
      h.index = v.index;
      h.expires = std::chrono::duration_cast<std::chrono::seconds>(
                      (SystemClock::Get().Now() + options_.signature_ttl).time_since_epoch())
                      .count();
      h.sig = options_.signing_key->Sign(SignedMessage(q.view, q.env, h.index, h.expires, v.body));
      r.AddHeader("X-Drover-Signature", FormatSignatureHeader(h));
    }
    http::RespondWithIndex(q.respond, q.if_none_match, std::move(r), v.index);
  }

  Result<std::shared_ptr<const View>> Compute(const Query& q) {
    std::string key = fmt::format("{}/{}/{}", q.tenant, q.env, q.view);
    int64_t at = store_.LastIndex();
    std::shared_ptr<const View> old;
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find(key); it != cache_.end()) old = it->second;
    }
    if (old && old->computed_at == at) return old;
    std::map<std::string, std::string> defaults;
    if (!q.env.empty() && q.prefix == "cc-a-") {
      auto d = defaults_(q.tenant, q.env);
      if (!d.ok()) return d.status();
      defaults = std::move(*d);
    }
    auto set = vars_.Effective(q.tenant, q.env, q.prefix, defaults);
    if (!set.ok()) return set.status();
    auto v = std::make_shared<View>();
    v->computed_at = at;
    v->body = "{";
    for (const auto& [k, val] : *set) {
      if (v->body.size() > 1) v->body += ',';
      AppendJsonString(v->body, k);
      v->body += ':';
      AppendJsonString(v->body, val);
      if (IsHeaderSafe(val)) v->headers.emplace_back(k, val);
    }
    v->body += '}';
    v->digest = Sha256(v->body);
    std::lock_guard lock(mu_);
    auto& slot = cache_[key];
    // Keep the index of an unchanged set; a changed one takes the index it was computed at.
    v->index = slot && slot->digest == v->digest ? slot->index : std::max<int64_t>(at, 1);
    if (!slot || slot->computed_at <= at) slot = v;
    if (cache_.size() > 10000) cache_.clear();  // bound memory against many distinct views
    return std::shared_ptr<const View>(v);
  }

  VariableService& vars_;
  AgentDefaultsFn defaults_;
  store::Store& store_;
  http::Waiters& waiters_;
  ControlCenterOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const View>> cache_;  // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<ControlCenterViews> AddControlCenterRoutes(
    http::Router& router, VariableService& vars, AgentDefaultsFn agent_defaults,
    store::Store& store, http::Waiters& waiters, ControlCenterOptions options) {
  auto views =
      std::make_unique<Views>(vars, std::move(agent_defaults), store, waiters, std::move(options));
  auto* self = views.get();
  router.Add(http::Method::kGet, "/v1/cc/agent", http::Access::kAgent,
             [self](http::Request& req, http::Responder respond) {
               self->Serve("agent", "cc-a-", req, std::move(respond));
             });
  router.Add(http::Method::kGet, "/v1/cc/watcher", http::Access::kAgent,
             [self](http::Request& req, http::Responder respond) {
               self->Serve("watcher", "cc-w-", req, std::move(respond));
             });
  return views;
}

}  // namespace drover::control
