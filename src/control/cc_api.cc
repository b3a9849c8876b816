#include "control/cc_api.h"

#include <fmt/format.h>

#include <atomic>
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

namespace {

// One computed view, valid while the store's index stays at `computed_at` (any commit may change
// it; then it is computed again, keeping `index` when the body comes out the same). Everything an
// answer sends is prepared here once, so serving a cached view allocates little.
struct View {
  int64_t computed_at = 0;
  int64_t index = 0;
  Sha256Digest digest{};
  std::string body;
  std::string etag;                               // "\"<index>\""
  std::shared_ptr<const std::string> head;        // cc-* headers, ETag, X-Drover-Index
  std::shared_ptr<const std::string> index_head;  // ETag and X-Drover-Index (for a 304)
};

// What identifies a view: tenant, environment and which view.
struct ViewKey {
  std::string_view view;
  const std::string& prefix;
  const std::string& tenant;
  const std::string& env;
};

class Views final : public ControlCenterViews {
 public:
  Views(VariableService& vars, AgentDefaultsFn defaults, store::Store& store,
        http::Waiters& waiters, ControlCenterOptions options)
      : vars_(vars),
        defaults_(std::move(defaults)),
        store_(store),
        waiters_(waiters),
        options_(std::move(options)) {}

  void Serve(std::string_view view, const std::string& prefix, http::Request& req,
             http::Responder respond) {
    auto tenant = http::RequestTenant(req);
    if (!tenant.ok()) return http::SendError(respond, tenant.status());
    std::string env(req.Query("environment").value_or(""));
    if (!env.empty() && !IsValidName(env)) {
      return http::SendError(respond, Status::InvalidArgument("query parameter 'environment' " +
                                                              std::string(kNameRule)));
    }
    const auto& caller = req.caller();
    if (caller.role == http::Role::kAgent && !caller.environment.empty()) {
      if (env.empty()) env = caller.environment;
      if (env != caller.environment) {
        return http::SendError(
            respond, Status::PermissionDenied(fmt::format(
                         "this agent key reads environment '{}' only", caller.environment)));
      }
    }
    auto blocking = http::ReadBlockingParams(req);
    if (!blocking.ok()) return http::SendError(respond, blocking.status());
    std::string_view inm = req.Header("If-None-Match");
    if (!*blocking) {  // the common case: no state to keep
      auto v = Compute({view, prefix, *tenant, env});
      if (!v.ok()) return http::SendError(respond, v.status());
      return Respond(view, env, inm, respond, **v);
    }
    auto q = std::make_shared<Query>();
    q->view = view;
    q->prefix = prefix;
    q->tenant = std::move(*tenant);
    q->env = std::move(env);
    q->if_none_match = std::string(inm);
    q->respond = std::move(respond);
    q->after = (*blocking)->index;
    q->deadline = std::chrono::steady_clock::now() + (*blocking)->wait;
    // A client that leaves releases its wait (and answers nobody) instead of holding it.
    req.OnCancel([this, q] {
      q->cancelled = true;
      if (uint64_t t = q->ticket.load()) waiters_.Cancel(t);
    });
    Step(std::move(q));
  }

 private:
  struct Query {
    std::string_view view;
    std::string prefix, tenant, env, if_none_match;
    http::Responder respond;
    int64_t after = 0;  // ?index=
    std::chrono::steady_clock::time_point deadline;
    int rechecks = 0;  // looks after a wake-up that found the set unchanged
    std::atomic<bool> cancelled{false};
    std::atomic<uint64_t> ticket{0};  // of the current wait
  };

  // Answers once the view's index passed ?index= (or time is up); otherwise waits for the next
  // change and looks again.
  void Step(std::shared_ptr<Query> q) {
    int64_t seen = store_.LastIndex();
    auto v = Compute({q->view, q->prefix, q->tenant, q->env});
    if (!v.ok()) return http::SendError(q->respond, v.status());
    auto now = std::chrono::steady_clock::now();
    // A wait may return at once when commits keep coming: after many unchanged looks in a row,
    // answer (clients compare the index) rather than loop on one stack.
    if ((*v)->index <= q->after && now < q->deadline && !waiters_.stopped() && !q->cancelled &&
        ++q->rechecks < 64) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(q->deadline - now);
      uint64_t t = waiters_.Wait(std::string(kTopic), seen, left, [this, q] { Step(q); });
      q->ticket = t;
      // A cancellation between Wait and storing the ticket missed it: release it here.
      if (t && q->cancelled) waiters_.Cancel(t);
      return;
    }
    Respond(q->view, q->env, q->if_none_match, q->respond, **v);
  }

  void Respond(std::string_view view, const std::string& env, std::string_view if_none_match,
               const http::Responder& respond, const View& v) {
    http::Response r;
    if (http::EtagMatches(if_none_match, v.etag)) {
      r.status = 304;
      r.extra_headers = v.index_head;
      return respond(std::move(r));
    }
    r.body = v.body;
    r.extra_headers = v.head;
    if (options_.signing_key) {
      SignatureHeader h;
      h.index = v.index;
      h.expires = std::chrono::duration_cast<std::chrono::seconds>(
                      (SystemClock::Get().Now() + options_.signature_ttl).time_since_epoch())
                      .count();
      h.sig = options_.signing_key->Sign(SignedMessage(view, env, h.index, h.expires, v.body));
      r.AddHeader("X-Drover-Signature", FormatSignatureHeader(h));
    }
    respond(std::move(r));
  }

  Result<std::shared_ptr<const View>> Compute(const ViewKey& k) {
    std::string key;
    key.reserve(k.tenant.size() + k.env.size() + k.view.size() + 2);
    key.append(k.tenant).append(1, '/').append(k.env).append(1, '/').append(k.view);
    int64_t at = store_.LastIndex();
    std::shared_ptr<const View> old;
    {
      std::lock_guard lock(mu_);
      if (auto it = cache_.find(key); it != cache_.end()) old = it->second;
    }
    if (old && old->computed_at == at) return old;
    std::map<std::string, std::string> defaults;
    if (!k.env.empty() && k.prefix == "cc-a-") {
      auto d = defaults_(k.tenant, k.env);
      if (!d.ok()) return d.status();
      defaults = std::move(*d);
    }
    auto set = vars_.Effective(k.tenant, k.env, k.prefix, defaults);
    if (!set.ok()) return set.status();
    auto v = std::make_shared<View>();
    v->computed_at = at;
    v->body = "{";
    std::string head;
    for (const auto& [name, val] : *set) {
      if (v->body.size() > 1) v->body += ',';
      AppendJsonString(v->body, name);
      v->body += ':';
      AppendJsonString(v->body, val);
      if (IsHeaderSafe(val)) head.append(name).append(": ").append(val).append("\r\n");
    }
    v->body += '}';
    v->digest = Sha256(v->body);
    std::lock_guard lock(mu_);
    auto& slot = cache_[key];
    // Keep the index of an unchanged set; a changed one takes the index it was computed at.
    v->index = slot && slot->digest == v->digest ? slot->index : std::max<int64_t>(at, 1);
    v->etag = fmt::format("\"{}\"", v->index);
    auto index_head = fmt::format("ETag: {}\r\nX-Drover-Index: {}\r\n", v->etag, v->index);
    v->head = std::make_shared<const std::string>(head + index_head);
    v->index_head = std::make_shared<const std::string>(std::move(index_head));
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
  static const std::string kAgentPrefix = "cc-a-", kWatcher{kWatcherPrefix};
  router.Add(http::Method::kGet, "/v1/cc/agent", http::Access::kAgent,
             [self](http::Request& req, http::Responder respond) {
               self->Serve("agent", kAgentPrefix, req, std::move(respond));
             });
  router.Add(http::Method::kGet, "/v1/cc/watcher", http::Access::kAgent,
             [self](http::Request& req, http::Responder respond) {
               self->Serve("watcher", kWatcher, req, std::move(respond));
             });
  return views;
}

}  // namespace drover::control
