#include "workflows/executions.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "client/client.h"
#include "common/json.h"
#include "common/log.h"
#include "common/random.h"
#include "common/text.h"
#include "common/trace.h"
#include "events/change_log.h"
#include "runtime/work_queue.h"
#include "workflows/template.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;

// The store topic new executions made inside other writes (topic triggers) notify: every
// server's engine sweeps for them.
constexpr std::string_view kNewExecutionsTopic = "executions";

// A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made close in
// time sort close together, so the executions' and their events' B-trees grow at one end
// instead of dirtying a random page of every level on each insert.
std::string NewUuid(int64_t now_ms) {
  std::string h =
      fmt::format("{:012x}", static_cast<uint64_t>(now_ms) & 0xffffffffffffULL) + RandomHex(10);
  h[12] = '7';                                                  // version 7
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // the RFC 9562 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

Status NoExecution(std::string_view id) {
  return Status::NotFound(fmt::format("execution '{}' does not exist", id));
}

Event FailedEvent(std::string step, int attempt, std::string_view error, bool final) {
  std::string data = "{\"error\":";
  AppendJsonString(data, error);
  data += final ? ",\"final\":true}" : ",\"final\":false}";
  return MakeEvent(kStepFailed, std::move(step), attempt, std::move(data));
}

constexpr std::string_view kExecutionColumns =
    "SELECT id, tenant, workflow, version, status, run, input, output, error, concurrency_key,"
    " created_at, started_at, ended_at, updated_at, last_seq, traceparent FROM executions";

Execution ReadExecution(const store::Row& r) {
  Execution e;
  e.id = r.String(0);
  e.tenant = r.String(1);
  e.workflow = r.String(2);
  e.version = r.Int(3);
  ParseExecutionStatus(r.Text(4), &e.state.status);
  e.state.run = static_cast<int>(r.Int(5));
  e.state.input = r.String(6);
  e.state.output = r.String(7);
  e.state.error = r.String(8);
  e.concurrency_key = r.String(9);
  e.state.created_at_ms = r.Int(10);
  e.state.started_at_ms = r.Int(11);
  e.state.ended_at_ms = r.Int(12);
  e.updated_at_ms = r.Int(13);
  e.state.last_seq = r.Int(14);
  e.traceparent = r.String(15);
  return e;
}

Event ReadEvent(const store::Row& r) {
  Event e = MakeEvent(r.Text(1), r.String(2), static_cast<int>(r.Int(3)), r.String(4));
  e.seq = r.Int(0);
  e.at_ms = r.Int(5);
  return e;
}

constexpr std::string_view kEventColumns =
    "SELECT seq, kind, step, attempt, data, at FROM execution_events";

// The signals an execution has received (kept in its log).
Status LoadSignals(store::Tx& tx, Execution& e) {
  return tx.Query(
      "SELECT step, data FROM execution_events WHERE execution = ? AND kind = 'signal_received'",
      {e.id}, [&](const store::Row& r) {
        auto d = ParseJsonOrNull(r.Text(1));
        const json::value* p = d.is_object() ? d.as_object().if_contains("payload") : nullptr;
        e.state.signals.emplace(r.String(0), p ? ToJson(*p) : "null");
      });
}

// The read model of one execution (steps, and signals when asked) inside a transaction.
Result<std::optional<Execution>> LoadExecution(store::Tx& tx, const std::string& id,
                                               bool for_update, bool with_signals = false) {
  std::optional<Execution> e;
  std::string sql = std::string(kExecutionColumns) + " WHERE id = ?";
  if (for_update) sql += " FOR UPDATE";
  DROVER_RETURN_IF_ERROR(tx.Query(sql, {id}, [&](const store::Row& r) { e = ReadExecution(r); }));
  if (!e) return e;
  DROVER_RETURN_IF_ERROR(tx.Query(
      "SELECT step, status, attempt, output, error, scheduled_at, due_at, started_at, ended_at,"
      " message_id FROM execution_steps WHERE execution = ?",
      {id}, [&](const store::Row& r) {
        StepState st;
        ParseStepStatus(r.Text(1), &st.status);
        st.attempt = static_cast<int>(r.Int(2));
        st.output = r.String(3);
        st.error = r.String(4);
        st.scheduled_at_ms = r.Int(5);
        st.due_at_ms = r.Int(6);
        st.started_at_ms = r.Int(7);
        st.ended_at_ms = r.Int(8);
        st.message_id = r.Int(9);
        e->state.steps[r.String(0)] = std::move(st);
      }));
  if (with_signals) DROVER_RETURN_IF_ERROR(LoadSignals(tx, *e));
  return e;
}

}  // namespace

// Work the engine does outside the transaction: an http call or a scale, for one attempt.
struct External {
  std::string tenant, execution, step;
  int attempt = 0;
  StepType type = StepType::kHttp;
  json::value fields;  // the step's fields, templates rendered
  std::chrono::milliseconds timeout{30'000};
  std::string traceparent = "";  // the execution's trace, a span of this step's own
};

// One execution being changed inside a write: its read model, what changed, what to do after.
struct Open {
  Execution e;
  std::shared_ptr<const WorkflowSpec> spec;
  std::set<std::string> dirty_steps;
  int64_t now = 0;
  int64_t wake_at = 0;
  std::vector<std::string> woken;  // executions to advance after the commit
  std::vector<External> external;  // to run after the commit
  int appended = 0;
  bool ended_now = false;  // the execution ended in this transaction
};

namespace {

// The context templates read: the execution's input and its succeeded steps' outputs.
class Rendering {
 public:
  explicit Rendering(const ExecutionState& s) : state_(s), input_(ParseJsonOrNull(s.input)) {}
  RenderContext Context() {
    return {&input_, [this](std::string_view step) -> const json::value* {
              auto it = state_.steps.find(std::string(step));
              if (it == state_.steps.end() || it->second.status != StepStatus::kSucceeded) {
                return nullptr;
              }
              auto [pos, _] = outputs_.emplace(it->first, ParseJsonOrNull(it->second.output));
              return &pos->second;
            }};
  }

 private:
  const ExecutionState& state_;
  json::value input_;
  std::map<std::string, json::value> outputs_;
};

// Writes one step's row of the read model.
Status UpsertStepRow(store::Tx& tx, const std::string& id, const std::string& name,
                     const StepState& st) {
  return tx.Defer(
      "INSERT INTO execution_steps (execution, step, status, attempt, output, error,"
      " scheduled_at, due_at, started_at, ended_at, message_id)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
      " ON CONFLICT (execution, step) DO UPDATE SET status = excluded.status,"
      " attempt = excluded.attempt, output = excluded.output, error = excluded.error,"
      " scheduled_at = excluded.scheduled_at, due_at = excluded.due_at,"
      " started_at = excluded.started_at, ended_at = excluded.ended_at,"
      " message_id = excluded.message_id",
      {id, name, StepStatusName(st.status), int64_t{st.attempt}, st.output, st.error,
       st.scheduled_at_ms, st.due_at_ms, st.started_at_ms, st.ended_at_ms, st.message_id},
      {});
}

// "http://host:port/path?q" into the client's address and the request target.
Result<std::pair<std::string, std::string>> SplitUrl(std::string_view url) {
  if (!url.starts_with("http://")) {
    return Status::InvalidArgument("the URL must start with http:// (https is not supported yet)");
  }
  size_t slash = url.find('/', 7);
  std::string origin(url.substr(0, slash));
  std::string target(slash == std::string_view::npos ? "/" : url.substr(slash));
  if (origin.size() <= 7) return Status::InvalidArgument("the URL has no host");
  return std::make_pair(std::move(origin), std::move(target));
}

// Runs one http step attempt: the output (the answer's JSON, or its text as a JSON string), or
// why it failed and whether another attempt may help.
struct CallResult {
  Status status;
  std::string output = "null";
  bool retryable = true;
};
// `track(client, true)` before the call and `(client, false)` after: a stopping server
// interrupts the calls under way.
CallResult CallHttp(const External& x, const std::function<void(client::Client*, bool)>& track) {
  CallResult out;
  const auto& f = x.fields.as_object();
  std::string url;
  if (const auto* u = f.if_contains("url"); u && u->is_string()) url = u->as_string();
  auto split = SplitUrl(url);
  if (!split.ok()) return {split.status(), "null", false};
  std::string method = "GET";
  if (const auto* m = f.if_contains("method"); m && m->is_string()) method = m->as_string();
  std::vector<std::pair<std::string, std::string>> headers;
  if (const auto* h = f.if_contains("headers"); h && h->is_object()) {
    // A lone template may have rendered a number: headers carry its text.
    for (const auto& kv : h->as_object()) {
      const auto& v = kv.value();
      if (v.is_null()) continue;
      headers.emplace_back(kv.key(), v.is_string() ? std::string(v.as_string()) : ToJson(v));
    }
  }
  std::string body;
  if (const auto* b = f.if_contains("body"); b && !b->is_null()) {
    body = b->is_string() ? std::string(b->as_string()) : ToJson(*b);
    headers.emplace_back("Content-Type", "application/json");
  }
  // The call is part of the execution's trace (unless the step sets its own traceparent).
  bool has_trace = false;
  for (const auto& [k, v] : headers) has_trace = has_trace || EqualsIgnoreCase(k, "traceparent");
  if (!has_trace && ValidTraceparent(x.traceparent))
    headers.emplace_back("traceparent", x.traceparent);
  client::Client c({.addr = split->first, .token = "", .timeout = x.timeout});
  track(&c, true);
  auto r = c.Do(method, split->second, body, std::move(headers));
  track(&c, false);
  // A request the client refuses to send (a rendered input with a line break) fails for good;
  // one that could not be delivered may be retried.
  if (!r.ok() && r.status().code() == Status::Code::kInvalidArgument) {
    return {r.status(), "null", false};
  }
  if (!r.ok()) return {Status::Unavailable(r.status().message()), "null", true};
  if (r->status < 200 || r->status > 299) {
    std::string text = r->body.substr(0, 200);
    bool retryable = r->status >= 500 || r->status == 429 || r->status == 408;
    return {Status::Unavailable(fmt::format("HTTP {}: {}", r->status, text)), "null", retryable};
  }
  std::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec) {
    std::string text;
    AppendJsonString(text, r->body.substr(0, 256 * 1024));
    out.output = r->body.empty() ? "null" : text;
  } else {
    out.output = ToJson(v);
  }
  return out;
}

}  // namespace

std::string ExecutionTopic(std::string_view id) { return "execution/" + std::string(id); }

struct ExecutionService::Impl {
  Impl(store::Store& s, WorkflowService& w, queues::QueueService& q, const Clock& c)
      : store(s), workflows(w), queues(q), clock(c) {}
  store::Store& store;
  WorkflowService& workflows;
  queues::QueueService& queues;
  const Clock& clock;
  ScaleFn scale;
  std::unique_ptr<runtime::WorkQueue> engine;
  std::unique_ptr<runtime::WorkQueue> sweeper;
  std::unique_ptr<runtime::WorkQueue> calls;  // http steps, keyed by id/step/attempt
  int subscription = -1;
  std::mutex mu;
  std::map<std::string, External> pending_calls;  // GUARDED_BY(mu)
  std::set<client::Client*> live_calls;           // GUARDED_BY(mu)
  bool stopping = false;                          // GUARDED_BY(mu)
  // Counters for /metrics: started by (tenant, workflow); ended by (tenant, workflow, status).
  std::mutex counts_mu;
  std::map<std::pair<std::string, std::string>, int64_t> started;  // GUARDED_BY(counts_mu)
  std::map<std::tuple<std::string, std::string, std::string>, int64_t>
      ended;  // GUARDED_BY(counts_mu)

  void CountStarted(const Execution& e) {
    std::lock_guard lock(counts_mu);
    ++started[{e.tenant, e.workflow}];
  }

  bool postgres() const { return store.Backend() == "postgres"; }

  Result<Open> OpenExecution(store::Tx& tx, const std::string& tenant, const std::string& id) {
    auto loaded = LoadExecution(tx, id, postgres());
    if (!loaded.ok()) return loaded.status();
    if (!*loaded || (!tenant.empty() && (*loaded)->tenant != tenant)) return NoExecution(id);
    Open o;
    o.e = std::move(**loaded);
    auto spec = workflows.SpecInTx(tx, o.e.tenant, o.e.workflow, o.e.version);
    if (!spec.ok()) return spec.status();
    o.spec = *spec;
    if (o.spec->waits) DROVER_RETURN_IF_ERROR(LoadSignals(tx, o.e));
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    o.now = *now;
    return o;
  }

  // Appends `e` to the log and folds it into the read model; messages of task attempts the
  // event ends leave their queues (into the dead-letter queue when a step failed for good:
  // poison tasks stay there to be looked at).
  Status Append(store::Tx& tx, Open& o, Event e) {
    e.seq = o.e.state.last_seq + 1;
    e.at_ms = o.now;
    // Deferred (PostgreSQL sends a write's statements in one round trip): nothing here needs
    // its answer, and a duplicate id still fails the write.
    DROVER_RETURN_IF_ERROR(
        tx.Defer("INSERT INTO execution_events (execution, seq, event_id, kind,"
                 " step, attempt, data, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 {o.e.id, e.seq, e.Id(), e.kind, e.step, int64_t{e.attempt}, e.data, e.at_ms}, {}));
    // The messages held before the event (Apply forgets those whose attempts it ends).
    std::map<std::string, int64_t> held;
    for (const auto& [name, st] : o.e.state.steps) {
      if (st.message_id) held[name] = st.message_id;
    }
    Apply(o.e.state, e);
    const bool whole = e.step.empty() || e.kind == kSignalReceived;
    if (whole) {
      // An execution's event may change every step (ended, skipped, reset for a retry).
      for (int i = 0; i < o.spec->size(); ++i) o.dirty_steps.insert(o.spec->At(i).name);
    } else if (o.spec->Find(e.step) >= 0) {
      o.dirty_steps.insert(e.step);
    }
    for (const auto& [name, id] : held) {
      auto it = o.e.state.steps.find(name);
      if (it == o.e.state.steps.end() || it->second.message_id == id) continue;
      int index = o.spec->Find(name);
      if (index < 0) continue;
      bool dead = it->second.status == StepStatus::kFailed;
      DROVER_RETURN_IF_ERROR(queues.RemoveInTx(tx, o.e.tenant, o.spec->At(index).queue, id, dead));
    }
    ++o.appended;
    return Status::Ok();
  }

  // Whether a pending execution may start: fewer than `max` of its concurrency key running or
  // ahead of it in line.
  Result<bool> MayStart(store::Tx& tx, const Open& o) {
    if (!o.spec->concurrency) return true;
    auto ahead = tx.QueryInt(
        "SELECT COUNT(*) FROM executions WHERE tenant = ? AND workflow = ? AND"
        " concurrency_key = ? AND (status = 'running' OR (status = 'pending' AND"
        " (created_at < ? OR (created_at = ? AND id < ?))))",
        {o.e.tenant, o.e.workflow, o.e.concurrency_key, o.e.state.created_at_ms,
         o.e.state.created_at_ms, o.e.id});
    if (!ahead.ok()) return ahead.status();
    return *ahead < o.spec->concurrency->max;
  }

  // The step's fields with templates rendered.
  static json::value RenderedFields(const Open& o, const StepSpec& sp) {
    if (!sp.parsed || !sp.parsed->is_object()) return json::object();
    Rendering r(o.e.state);
    return Render(*sp.parsed, r.Context());
  }

  // The body of a task attempt's message: what the worker runs, with templates rendered.
  static std::string TaskBody(const Open& o, const StepSpec& sp, int attempt) {
    json::value fields = RenderedFields(o, sp);
    const auto& f = fields.as_object();
    json::object body;
    body["execution"] = o.e.id;
    body["workflow"] = o.e.workflow;
    body["step"] = sp.name;
    body["attempt"] = attempt;
    // The worker's command runs in the execution's trace (TRACEPARENT), as a span of its own.
    body["traceparent"] = ChildTraceparent(o.e.traceparent);
    if (const auto* c = f.if_contains("command")) body["command"] = *c;
    const auto* in = f.if_contains("input");
    body["input"] = in ? *in : json::value(nullptr);
    return ToJson(body);
  }

  // Decide, append, do the steps' work in the same transaction, until nothing more happens.
  Status Run(store::Tx& tx, Open& o) {
    for (int round = 0; round < 2 * o.spec->size() + 8; ++round) {
      bool may_start = true;
      if (o.e.state.status == ExecutionStatus::kPending) {
        auto m = MayStart(tx, o);
        if (!m.ok()) return m.status();
        may_start = *m;
      }
      Decision d = Decide(*o.spec, o.e.state, o.now, may_start);
      o.wake_at = d.wake_at_ms;
      if (!may_start) o.wake_at = o.now + 60'000;  // a safety net: the ending one wakes it
      if (d.events.empty()) break;
      std::vector<Event> follow;  // failures found doing the work
      for (const auto& w : d.work) {
        const StepSpec& sp = o.spec->At(w.step);
        if (sp.type != StepType::kTask) {
          // Run after the commit, outside the transaction; the step's timeout bounds it.
          o.external.push_back({o.e.tenant, o.e.id, sp.name, w.attempt, sp.type,
                                RenderedFields(o, sp),
                                sp.timeout.value_or(std::chrono::milliseconds(30'000)),
                                ChildTraceparent(o.e.traceparent)});
          continue;
        }
        queues::OutgoingMessage m;
        m.body = TaskBody(o, sp, w.attempt);
        if (w.due_at_ms > o.now) m.delay_ms = w.due_at_ms - o.now;
        auto sent = queues.SendInTx(tx, o.e.tenant, sp.queue, m);
        for (auto& e : d.events) {
          if (e.kind == kStepScheduled && e.step == sp.name) {
            e.data = fmt::format(R"({{"due_at":{},"message":{}}})", w.due_at_ms,
                                 sent.ok() ? sent->id : 0);
          }
        }
        if (!sent.ok()) {
          follow.push_back(FailedEvent(
              sp.name, w.attempt,
              "cannot send to queue " + sp.queue + ": " + sent.status().message(), true));
        }
      }
      for (auto& e : d.events) DROVER_RETURN_IF_ERROR(Append(tx, o, std::move(e)));
      for (auto& e : follow) DROVER_RETURN_IF_ERROR(Append(tx, o, std::move(e)));
    }
    return Status::Ok();
  }

  // Writes the read model back and notifies followers. With `new_key` the execution is new
  // in this transaction: its row is inserted as it stands now (with that idempotency key)
  // rather than inserted and then updated.
  Status Flush(store::Tx& tx, Open& o, ExecutionStatus before,
               const std::string* new_key = nullptr) {
    if (!new_key && o.appended == 0) return Status::Ok();
    const auto& s = o.e.state;
    store::Param wake = o.wake_at ? store::Param(o.wake_at) : store::Param(nullptr);
    if (new_key) {
      DROVER_RETURN_IF_ERROR(tx.Defer(
          "INSERT INTO executions (id, tenant, workflow, version, status, run, input, output,"
          " error, idempotency_key, concurrency_key, created_at, started_at, ended_at,"
          " updated_at, last_seq, wake_at, traceparent)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          {o.e.id, o.e.tenant, o.e.workflow, o.e.version, ExecutionStatusName(s.status),
           int64_t{s.run}, s.input, s.output, s.error, *new_key, o.e.concurrency_key,
           s.created_at_ms, s.started_at_ms, s.ended_at_ms, o.now, s.last_seq, wake,
           o.e.traceparent},
          {}));
    } else {
      DROVER_RETURN_IF_ERROR(
          tx.Defer("UPDATE executions SET status = ?, run = ?, output = ?, error = ?,"
                   " started_at = ?, ended_at = ?, updated_at = ?, last_seq = ?, wake_at = ?"
                   " WHERE id = ?",
                   {ExecutionStatusName(s.status), int64_t{s.run}, s.output, s.error,
                    s.started_at_ms, s.ended_at_ms, o.now, s.last_seq, wake, o.e.id},
                   {}));
    }
    for (const auto& name : o.dirty_steps) {
      DROVER_RETURN_IF_ERROR(UpsertStepRow(tx, o.e.id, name, o.e.state.steps[name]));
    }
    // A change index, so blocking reads and event streams of this execution wake.
    DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
    DROVER_RETURN_IF_ERROR(tx.Notify(ExecutionTopic(o.e.id)));
    o.ended_now = IsEnded(s.status) && !IsEnded(before);
    if (o.ended_now) {
      DROVER_RETURN_IF_ERROR(events::Record(
          tx, {o.e.tenant, "execution", o.e.id, std::string(ExecutionStatusName(s.status)),
               fmt::format(R"({{"workflow":"{}"}})", o.e.workflow)}));
      if (o.spec->concurrency) {
        // The next in line for the same key may start now.
        std::optional<std::string> next;
        DROVER_RETURN_IF_ERROR(
            tx.Query("SELECT id FROM executions WHERE tenant = ? AND workflow = ? AND"
                     " concurrency_key = ? AND status = 'pending' ORDER BY created_at, id LIMIT 1",
                     {o.e.tenant, o.e.workflow, o.e.concurrency_key},
                     [&](const store::Row& r) { next = r.String(0); }));
        if (next) {
          DROVER_RETURN_IF_ERROR(
              tx.Exec("UPDATE executions SET wake_at = ? WHERE id = ?", {o.now, *next}).status());
          o.woken.push_back(*next);
        }
      }
    }
    return Status::Ok();
  }

  // A change of one execution from outside (a worker, a signal, cancel, retry, a step the
  // engine ran): `change` appends what happened (or nothing for a repeat), then the engine runs.
  void Change(std::string tenant, std::string id, std::function<Status(store::Tx&, Open&)> change,
              std::function<void(Result<Execution>)> done) {
    auto out = std::make_shared<Open>();
    store.Write(
        [this, out, tenant = std::move(tenant), id = std::move(id),
         change = std::move(change)](store::Tx& tx) -> Status {
          auto o = OpenExecution(tx, tenant, id);
          if (!o.ok()) return o.status();
          *out = std::move(*o);
          ExecutionStatus before = out->e.state.status;
          DROVER_RETURN_IF_ERROR(change(tx, *out));
          if (out->appended == 0) return Status::Ok();  // a repeat: nothing to do
          DROVER_RETURN_IF_ERROR(Run(tx, *out));
          return Flush(tx, *out, before);
        },
        [this, out, done = std::move(done)](Status s) {
          if (!s.ok()) return done(s);
          AfterCommit(*out);
          done(out->e);
        });
  }

  void AfterCommit(Open& o) {
    if (o.ended_now) {
      std::lock_guard lock(counts_mu);
      ++ended[{o.e.tenant, o.e.workflow, std::string(ExecutionStatusName(o.e.state.status))}];
      o.ended_now = false;
    }
    if (!engine) return;
    for (const auto& w : o.woken) engine->Add(w);
    if (o.wake_at > o.now) engine->AddAfter(o.e.id, std::chrono::milliseconds(o.wake_at - o.now));
    for (auto& x : o.external) Dispatch(std::move(x));
    o.external.clear();
  }

  // Starts an http call or a scale; its outcome comes back as the step's success or failure.
  void Dispatch(External x) {
    if (x.type == StepType::kScale) {
      std::string env, capacity;
      const auto& f = x.fields.as_object();
      if (const auto* e = f.if_contains("environment"); e && e->is_string()) env = e->as_string();
      if (const auto* c = f.if_contains("capacity")) {
        capacity = c->is_string() ? std::string(c->as_string()) : ToJson(*c);
      }
      if (!scale) {
        return Finish(std::move(x),
                      {Status::Unavailable("scale steps are not wired"), "null", false});
      }
      std::string output = fmt::format(R"({{"environment":"{}","capacity":{}}})", env,
                                       ToJson(json::value(json::string(capacity))));
      scale(x.tenant, env, capacity, [this, x, output](Status s) mutable {
        Finish(std::move(x), {s, s.ok() ? output : "null", !s.IsNotFound() && !s.IsValidation()});
      });
      return;
    }
    std::string key = x.execution + "/" + x.step + "/" + std::to_string(x.attempt);
    {
      std::lock_guard lock(mu);
      pending_calls.emplace(key, std::move(x));
    }
    calls->Add(key);
  }

  // Records the outcome of an attempt the engine ran itself, unless the step moved on meanwhile
  // (a timeout, a cancel, a retry): then it is stale and changes nothing.
  void Finish(External x, CallResult r) {
    int attempt = x.attempt;
    std::string step = x.step;
    Change(
        x.tenant, x.execution,
        [this, step, attempt, r = std::move(r)](store::Tx& tx, Open& o) -> Status {
          auto it = o.e.state.steps.find(step);
          if (it == o.e.state.steps.end() || it->second.status != StepStatus::kRunning ||
              it->second.attempt != attempt || IsEnded(o.e.state.status)) {
            return Status::Ok();
          }
          if (r.status.ok()) {
            return Append(
                tx, o, MakeEvent(kStepSucceeded, step, attempt, "{\"output\":" + r.output + "}"));
          }
          const StepSpec& sp = o.spec->At(o.spec->Find(step));
          bool final = !r.retryable || attempt >= sp.retry.max_attempts;
          return Append(tx, o, FailedEvent(step, attempt, r.status.message(), final));
        },
        [step](Result<Execution> e) {
          if (!e.ok() && !e.status().IsNotFound()) {
            LogWarn("recording step {}: {}", step, e.status().message());
          }
        });
  }

  runtime::Outcome RunCall(const std::string& key) {
    std::optional<External> x;
    {
      std::lock_guard lock(mu);
      auto it = pending_calls.find(key);
      if (it == pending_calls.end()) return runtime::Outcome::Done();
      x = std::move(it->second);
      pending_calls.erase(it);
    }
    CallResult r = CallHttp(*x, [this](client::Client* c, bool on) {
      std::lock_guard lock(mu);
      if (!on) {
        live_calls.erase(c);
      } else if (stopping) {
        c->Interrupt();
      } else {
        live_calls.insert(c);
      }
    });
    {
      // Interrupted by a stopping server: not the step's failure. The attempt stays running
      // and its timeout decides (on whichever server runs the engine next).
      std::lock_guard lock(mu);
      if (stopping) return runtime::Outcome::Done();
    }
    Finish(std::move(*x), std::move(r));
    return runtime::Outcome::Done();
  }

  // Whether the event with this id is in the log already.
  static Result<bool> Has(store::Tx& tx, const Open& o, const std::string& event_id) {
    auto n =
        tx.QueryInt("SELECT COUNT(*) FROM execution_events WHERE execution = ? AND event_id = ?",
                    {o.e.id, event_id});
    if (!n.ok()) return n.status();
    return *n > 0;
  }

  // The checks of a worker's report; OK(false) for a repeat of a report already taken.
  static Result<bool> CheckReport(store::Tx& tx, Open& o, const std::string& step, int attempt,
                                  std::string_view kind) {
    int index = o.spec->Find(step);
    if (index < 0) return Status::NotFound(fmt::format("execution has no step '{}'", step));
    if (o.spec->At(index).type != StepType::kTask) {
      return Status::Conflict(fmt::format("step '{}' is not a task", step));
    }
    const StepState& st = o.e.state.steps[step];
    if (IsEnded(o.e.state.status) || IsEnded(st.status) || st.status == StepStatus::kPending ||
        attempt < st.attempt) {
      // Not a report the step waits for: the same report again (answered as it was), or stale.
      // (A report the state waits for cannot be in the log yet: it would have moved the step.)
      auto dup = Has(tx, o, EventId(kind, step, attempt));
      if (!dup.ok()) return dup.status();
      if (*dup) return false;
      return Status::Conflict(
          fmt::format("attempt {} of step '{}' is stale: the step is {} at attempt {}", attempt,
                      step, StepStatusName(st.status), st.attempt));
    }
    return true;
  }

  // A worker's report as events: `started` first when the server has not seen this attempt run.
  Status Report(store::Tx& tx, Open& o, int attempt, Event e) {
    const StepState& st = o.e.state.steps[e.step];
    if (st.status != StepStatus::kRunning || st.attempt != attempt) {
      DROVER_RETURN_IF_ERROR(Append(tx, o, MakeEvent(kStepStarted, e.step, attempt)));
    }
    return Append(tx, o, std::move(e));
  }

  // Advances one execution in a write of its own, answered after the commit: the engine does
  // not wait for it, so advances of many executions share commits.
  void AdvanceAsync(const std::string& id, std::function<void(Status)> done) {
    auto out = std::make_shared<Open>();
    store.Write(
        [this, out, id](store::Tx& tx) -> Status {
          auto o = OpenExecution(tx, "", id);
          if (!o.ok()) return o.status();
          *out = std::move(*o);
          ExecutionStatus before = out->e.state.status;
          DROVER_RETURN_IF_ERROR(Run(tx, *out));
          if (out->appended == 0) {
            // Nothing happened: only the wake time may move (a held execution, a timer).
            std::optional<int64_t> wake;
            if (out->wake_at) wake = out->wake_at;
            return tx
                .Exec("UPDATE executions SET wake_at = ? WHERE id = ?",
                      {wake ? store::Param(*wake) : store::Param(nullptr), id})
                .status();
          }
          return Flush(tx, *out, before);
        },
        [this, out, done = std::move(done)](Status s) {
          if (s.ok()) AfterCommit(*out);
          done(std::move(s));
        });
  }

  // Inserts a new execution of the workflow's current version inside `tx` (or finds the one
  // its idempotency key names).
  // With `insert_row` false the caller writes the execution's row (Flush with its key).
  Result<ExecutionService::Created> CreateInTx(store::Tx& tx, Execution e, const std::string& key,
                                               bool insert_row = true) {
    ExecutionService::Created out;
    if (!key.empty()) {
      std::optional<std::pair<std::string, std::string>> first;
      DROVER_RETURN_IF_ERROR(
          tx.Query("SELECT id, input FROM executions WHERE tenant = ? AND workflow = ? AND"
                   " idempotency_key = ?",
                   {e.tenant, e.workflow, key},
                   [&](const store::Row& r) { first.emplace(r.String(0), r.String(1)); }));
      if (first) {
        if (first->second != e.state.input) {
          return Status::Validation(
              {{"Idempotency-Key", "was used for an execution with a different input"}});
        }
        auto loaded = LoadExecution(tx, first->first, false);
        if (!loaded.ok()) return loaded.status();
        if (*loaded) {
          out.execution = std::move(**loaded);
          out.replayed = true;
          return out;
        }
      }
    }
    auto version = workflows.CurrentVersionInTx(tx, e.tenant, e.workflow);
    if (!version.ok()) return version.status();
    auto spec = workflows.SpecInTx(tx, e.tenant, e.workflow, *version);
    if (!spec.ok()) return spec.status();
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    e.id = NewUuid(*now);
    e.version = *version;
    if ((*spec)->concurrency) {
      json::value input = ParseJsonOrNull(e.state.input);
      e.concurrency_key = RenderText((*spec)->concurrency->key, {&input, nullptr});
    }
    if (!ValidTraceparent(e.traceparent)) e.traceparent = NewTraceparent();
    json::object data;
    data["input"] = ParseJsonOrNull(e.state.input);
    data["workflow"] = e.workflow;
    data["version"] = e.version;
    data["trace_id"] = TraceIdOf(e.traceparent);
    json::array names;
    for (int i = 0; i < (*spec)->size(); ++i) names.push_back(json::string((*spec)->At(i).name));
    data["steps"] = std::move(names);
    Event created = MakeEvent(kExecutionCreated, "", 0, ToJson(data));
    created.seq = 1;
    created.at_ms = *now;
    std::string input = std::move(e.state.input);
    e.state = ExecutionState{};
    Apply(e.state, created);
    e.state.input = std::move(input);
    e.updated_at_ms = *now;
    // A key another server is inserting right now: its row wins (the unique index), and this
    // write fails rather than answering a second execution.
    if (insert_row) {
      DROVER_RETURN_IF_ERROR(
          tx.Defer("INSERT INTO executions (id, tenant, workflow, version, status, run, input,"
                   " output, error, idempotency_key, concurrency_key, created_at, started_at,"
                   " ended_at, updated_at, last_seq, wake_at, traceparent)"
                   " VALUES (?, ?, ?, ?, 'pending', 0, ?, 'null', '', ?, ?, ?, 0, 0, ?, 1, ?, ?)",
                   {e.id, e.tenant, e.workflow, e.version, e.state.input, key, e.concurrency_key,
                    *now, *now, *now, e.traceparent},
                   {}));
    }
    DROVER_RETURN_IF_ERROR(
        tx.Defer("INSERT INTO execution_events (execution, seq, event_id,"
                 " kind, step, attempt, data, at)"
                 " VALUES (?, 1, ?, ?, '', 0, ?, ?)",
                 {e.id, created.Id(), created.kind, created.data, *now}, {}));
    out.execution = std::move(e);
    return out;
  }
};

ExecutionService::ExecutionService(store::Store& store, WorkflowService& workflows,
                                   queues::QueueService& queues, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, workflows, queues, clock)) {}

ExecutionService::~ExecutionService() { Stop(); }

void ExecutionService::SetScale(ScaleFn scale) { impl_->scale = std::move(scale); }

void ExecutionService::Start() {
  if (impl_->engine) return;
  impl_->engine = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "executions", .workers = 2, .clock = &impl_->clock},
      [im = impl_.get()](const std::string& id) {
        im->AdvanceAsync(id, [im, id](Status s) {
          if (s.ok() || s.IsNotFound()) return;
          LogWarn("advancing execution {}: {} (again in a second)", id, s.message());
          if (im->engine) im->engine->AddAfter(id, std::chrono::seconds(1));
        });
        return runtime::Outcome::Done();
      });
  impl_->sweeper = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "execution-sweep", .clock = &impl_->clock},
      [this](const std::string&) {
        auto n = Sweep();
        if (!n.ok()) return runtime::Outcome::Failed(n.status());
        return runtime::Outcome::After(std::chrono::seconds(1));
      });
  impl_->calls = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "http-steps", .workers = 4, .clock = &impl_->clock},
      [im = impl_.get()](const std::string& key) { return im->RunCall(key); });
  impl_->engine->Start();
  impl_->sweeper->Start();
  impl_->calls->Start();
  impl_->sweeper->Add("sweep");
  // Executions started inside other writes (topic triggers), here or on another server.
  impl_->subscription = impl_->store.Subscribe([im = impl_.get()](const store::Change& c) {
    bool ours = c.resync ||
                std::find(c.topics.begin(), c.topics.end(), kNewExecutionsTopic) != c.topics.end();
    if (ours && im->sweeper) im->sweeper->Add("sweep");
  });
}

void ExecutionService::Stop() {
  if (impl_->subscription >= 0) {
    impl_->store.Unsubscribe(impl_->subscription);
    impl_->subscription = -1;
  }
  if (impl_->sweeper) impl_->sweeper->Stop(runtime::WorkQueue::kUntilDone);
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    for (auto* c : impl_->live_calls) c->Interrupt();
  }
  if (impl_->calls) impl_->calls->Stop(runtime::WorkQueue::kUntilDone);
  if (impl_->engine) impl_->engine->Stop(runtime::WorkQueue::kUntilDone);
}

void ExecutionService::Create(std::string tenant, std::string workflow, std::string input_json,
                              std::string idempotency_key,
                              std::function<void(Result<Created>)> done, std::string traceparent) {
  auto out = std::make_shared<Created>();
  out->execution.traceparent = std::move(traceparent);
  out->execution.tenant = std::move(tenant);
  out->execution.workflow = std::move(workflow);
  out->execution.state.input = std::move(input_json);
  Impl* impl = impl_.get();
  Execution proto = out->execution;
  auto open = std::make_shared<Open>();
  impl_->store.Write(
      [impl, out, open, proto = std::move(proto),
       key = std::move(idempotency_key)](store::Tx& tx) -> Status {
        auto created = impl->CreateInTx(tx, proto, key, /*insert_row=*/false);
        if (!created.ok()) return created.status();
        *out = std::move(*created);
        if (out->replayed) return Status::Ok();
        // The first steps are scheduled in the same transaction (none runs before the commit):
        // one write per accepted execution instead of two.
        *open = Open{};
        open->e = out->execution;
        auto spec = impl->workflows.SpecInTx(tx, open->e.tenant, open->e.workflow, open->e.version);
        if (!spec.ok()) return spec.status();
        open->spec = *spec;
        open->now = open->e.state.created_at_ms;
        DROVER_RETURN_IF_ERROR(impl->Run(tx, *open));
        return impl->Flush(tx, *open, ExecutionStatus::kPending, &key);
      },
      [impl, out, open, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        if (!out->replayed) {
          impl->CountStarted(out->execution);
          impl->AfterCommit(*open);
        }
        done(std::move(*out));
      });
}

Result<std::vector<ExecutionService::Started>> ExecutionService::StartFromTopicInTx(
    store::Tx& tx, const std::string& tenant, const std::string& topic,
    const std::string& input_json, const std::string& dedup_id) {
  std::vector<std::string> names;
  DROVER_RETURN_IF_ERROR(tx.Query(
      "SELECT workflow FROM workflow_triggers WHERE tenant = ? AND topic = ? ORDER BY workflow",
      {tenant, topic}, [&](const store::Row& r) { names.push_back(r.String(0)); }));
  std::vector<Started> out;
  for (const auto& name : names) {
    Execution e;
    e.tenant = tenant;
    e.workflow = name;
    e.state.input = input_json;
    auto created = impl_->CreateInTx(tx, std::move(e),
                                     dedup_id.empty() ? "" : "topic/" + topic + "/" + dedup_id);
    if (!created.ok()) {
      if (created.status().IsValidation()) continue;  // the same dedup id with another body
      return created.status();
    }
    out.push_back({name, created->execution.id, created->replayed});
  }
  if (!out.empty()) DROVER_RETURN_IF_ERROR(tx.Notify(kNewExecutionsTopic));
  return out;
}

Result<Execution> ExecutionService::Get(const std::string& tenant, const std::string& id) {
  std::optional<Execution> e;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    auto loaded = LoadExecution(tx, id, false);
    if (!loaded.ok()) return loaded.status();
    e = std::move(*loaded);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!e || e->tenant != tenant) return NoExecution(id);
  return std::move(*e);
}

Result<Page<Execution>> ExecutionService::List(const std::string& tenant,
                                               const ExecutionFilter& filter,
                                               const std::string& cursor, int limit) {
  // Newest first; the cursor is "created_at/id" of the last one shown.
  int64_t before_at = INT64_MAX;
  std::string before_id = "\x7f";
  if (!cursor.empty()) {
    size_t slash = cursor.find('/');
    auto [p, ec] = std::from_chars(
        cursor.data(), cursor.data() + (slash == std::string::npos ? 0 : slash), before_at);
    if (slash == std::string::npos || ec != std::errc() || p != cursor.data() + slash) {
      return Status::InvalidArgument("cursor: not one this server gave");
    }
    before_id = cursor.substr(slash + 1);
  }
  std::string status = filter.status ? std::string(ExecutionStatusName(*filter.status)) : "";
  Page<Execution> page;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kExecutionColumns) +
                        " WHERE tenant = ? AND (? = '' OR workflow = ?) AND (? = '' OR status = ?)"
                        " AND (created_at < ? OR (created_at = ? AND id < ?))"
                        " ORDER BY created_at DESC, id DESC LIMIT ?",
                    {tenant, filter.workflow, filter.workflow, status, status, before_at, before_at,
                     before_id, int64_t{limit} + 1},
                    [&](const store::Row& r) { page.items.push_back(ReadExecution(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit,
            [](const Execution& e) { return std::to_string(e.state.created_at_ms) + "/" + e.id; });
  return page;
}

Result<std::vector<Event>> ExecutionService::Events(const std::string& tenant,
                                                    const std::string& id, int64_t after,
                                                    int limit) {
  std::vector<Event> out;
  bool found = false;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    DROVER_RETURN_IF_ERROR(tx.Query("SELECT tenant FROM executions WHERE id = ?", {id},
                                    [&](const store::Row& r) { found = r.Text(0) == tenant; }));
    if (!found) return Status::Ok();
    return tx.Query(
        std::string(kEventColumns) + " WHERE execution = ? AND seq > ? ORDER BY seq LIMIT ?",
        {id, after, int64_t{limit}}, [&](const store::Row& r) { out.push_back(ReadEvent(r)); });
  });
  if (!s.ok()) return s;
  if (!found) return NoExecution(id);
  return out;
}

void ExecutionService::Complete(std::string tenant, std::string id, std::string step, int attempt,
                                std::string output_json,
                                std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl, step = std::move(step), attempt, output = std::move(output_json)](store::Tx& tx,
                                                                               Open& o) -> Status {
        auto fresh = Impl::CheckReport(tx, o, step, attempt, kStepSucceeded);
        if (!fresh.ok()) return fresh.status();
        if (!*fresh) return Status::Ok();
        return impl->Report(
            tx, o, attempt,
            MakeEvent(kStepSucceeded, step, attempt, "{\"output\":" + output + "}"));
      },
      std::move(done));
}

void ExecutionService::Fail(std::string tenant, std::string id, std::string step, int attempt,
                            std::string error, bool retryable,
                            std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl, step = std::move(step), attempt, error = std::move(error), retryable](
          store::Tx& tx, Open& o) -> Status {
        auto fresh = Impl::CheckReport(tx, o, step, attempt, kStepFailed);
        if (!fresh.ok()) return fresh.status();
        if (!*fresh) return Status::Ok();
        const StepSpec& sp = o.spec->At(o.spec->Find(step));
        bool final = !retryable || attempt >= sp.retry.max_attempts;
        return impl->Report(tx, o, attempt, FailedEvent(step, attempt, error, final));
      },
      std::move(done));
}

namespace {

Status EndedConflict(const ExecutionState& s) {
  return Status::Conflict(fmt::format("the execution has {}", ExecutionStatusName(s.status)));
}

}  // namespace

void ExecutionService::Signal(std::string tenant, std::string id, std::string name,
                              std::string payload_json,
                              std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl, name = std::move(name), payload = std::move(payload_json)](store::Tx& tx,
                                                                        Open& o) -> Status {
        if (IsEnded(o.e.state.status)) return EndedConflict(o.e.state);
        if (o.e.state.signals.count(name)) return Status::Ok();  // once per name
        return impl->Append(tx, o,
                            MakeEvent(kSignalReceived, name, 0, "{\"payload\":" + payload + "}"));
      },
      std::move(done));
}

void ExecutionService::Cancel(std::string tenant, std::string id,
                              std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl](store::Tx& tx, Open& o) -> Status {
        if (IsEnded(o.e.state.status)) return EndedConflict(o.e.state);
        return impl->Append(tx, o, MakeEvent(kExecutionCancelled, "", o.e.state.run));
      },
      std::move(done));
}

void ExecutionService::Retry(std::string tenant, std::string id,
                             std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl](store::Tx& tx, Open& o) -> Status {
        auto st = o.e.state.status;
        if (st != ExecutionStatus::kFailed && st != ExecutionStatus::kCancelled) {
          return Status::Conflict(
              fmt::format("only a failed or cancelled execution can be retried; this one is {}",
                          ExecutionStatusName(st)));
        }
        return impl->Append(tx, o, MakeEvent(kExecutionRetried, "", o.e.state.run + 1));
      },
      std::move(done));
}

Status ExecutionService::Advance(const std::string& id) {
  std::promise<Status> p;
  impl_->AdvanceAsync(id, [&p](Status s) { p.set_value(std::move(s)); });
  return p.get_future().get();
}

Result<int> ExecutionService::Sweep() {
  std::vector<std::string> due;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    return tx.Query("SELECT id FROM executions WHERE wake_at <= ? ORDER BY wake_at LIMIT 1000",
                    {*now}, [&](const store::Row& r) { due.push_back(r.String(0)); });
  });
  if (!s.ok()) return s;
  for (const auto& id : due) {
    if (impl_->engine) impl_->engine->Add(id);
  }
  return static_cast<int>(due.size());
}

Result<int64_t> ExecutionService::Expire() {
  struct Ended {
    std::string id, tenant, workflow;
    int64_t version = 0, ended_at = 0;
  };
  std::vector<Ended> ended;
  int64_t now = 0;
  Status s = impl_->store.Read([&](store::Tx& tx) -> Status {
    auto n = tx.NowMillis();
    if (!n.ok()) return n.status();
    now = *n;
    // Every retention is at least a minute: nothing younger can have expired.
    return tx.Query(
        "SELECT id, tenant, workflow, version, ended_at FROM executions WHERE ended_at > 0 AND"
        " ended_at < ? ORDER BY ended_at LIMIT 1000",
        {now - 60'000}, [&](const store::Row& r) {
          ended.push_back({r.String(0), r.String(1), r.String(2), r.Int(3), r.Int(4)});
        });
  });
  if (!s.ok()) return s;
  std::vector<std::string> expired;
  for (const auto& e : ended) {
    auto spec = impl_->workflows.Spec(e.tenant, e.workflow, e.version);
    int64_t retention = spec.ok() ? (*spec)->retention.count() : 0;
    if (e.ended_at < now - retention) expired.push_back(e.id);
  }
  if (expired.empty()) return int64_t{0};
  Status w = store::WriteSync(impl_->store, [&](store::Tx& tx) -> Status {
    for (const auto& id : expired) {
      for (const char* sql : {"DELETE FROM execution_events WHERE execution = ?",
                              "DELETE FROM execution_steps WHERE execution = ?",
                              "DELETE FROM executions WHERE id = ? AND ended_at > 0"}) {
        DROVER_RETURN_IF_ERROR(tx.Exec(sql, {id}).status());
      }
    }
    return Status::Ok();
  });
  if (!w.ok()) return w;
  return static_cast<int64_t>(expired.size());
}

namespace {

// One execution's read model from its log.
Status RebuildOne(store::Tx& tx, const std::string& id) {
  std::vector<Event> log;
  DROVER_RETURN_IF_ERROR(tx.Query(std::string(kEventColumns) + " WHERE execution = ? ORDER BY seq",
                                  {id},
                                  [&](const store::Row& row) { log.push_back(ReadEvent(row)); }));
  ExecutionState st = Fold(log);
  DROVER_RETURN_IF_ERROR(tx.Exec("UPDATE executions SET status = ?, run = ?, output = ?,"
                                 " error = ?, started_at = ?, ended_at = ?, last_seq = ?"
                                 " WHERE id = ?",
                                 {ExecutionStatusName(st.status), int64_t{st.run}, st.output,
                                  st.error, st.started_at_ms, st.ended_at_ms, st.last_seq, id})
                             .status());
  DROVER_RETURN_IF_ERROR(tx.Exec("DELETE FROM execution_steps WHERE execution = ?", {id}).status());
  for (const auto& [name, step] : st.steps) {
    DROVER_RETURN_IF_ERROR(UpsertStepRow(tx, id, name, step));
  }
  return Status::Ok();
}

}  // namespace

void ExecutionService::RenderMetrics(std::string& out) {
  std::lock_guard lock(impl_->counts_mu);
  auto label = [](std::string& l, std::string_view name, std::string_view value) {
    if (!l.empty()) l += ',';
    l += name;
    l += '=';
    AppendJsonString(l, value);  // a JSON string is a valid label value for names
  };
  out +=
      "# HELP drover_executions_started_total Executions accepted through this server's API and "
      "schedules.\n# TYPE drover_executions_started_total counter\n";
  for (const auto& [k, n] : impl_->started) {
    std::string l;
    label(l, "tenant", k.first);
    label(l, "workflow", k.second);
    out += fmt::format("drover_executions_started_total{{{}}} {}\n", l, n);
  }
  out +=
      "# HELP drover_executions_ended_total Executions that ended on this server, by status.\n"
      "# TYPE drover_executions_ended_total counter\n";
  for (const auto& [k, n] : impl_->ended) {
    std::string l;
    label(l, "tenant", std::get<0>(k));
    label(l, "workflow", std::get<1>(k));
    label(l, "status", std::get<2>(k));
    out += fmt::format("drover_executions_ended_total{{{}}} {}\n", l, n);
  }
}

Result<int64_t> ExecutionService::Rebuild() {
  std::vector<std::string> ids;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query("SELECT id FROM executions ORDER BY id", {},
                    [&](const store::Row& r) { ids.push_back(r.String(0)); });
  });
  if (!s.ok()) return s;
  // Many executions per transaction: a rebuild is bound by the rows, not by commits.
  constexpr size_t kBatch = 200;
  for (size_t from = 0; from < ids.size(); from += kBatch) {
    Status r = store::WriteSync(impl_->store, [&](store::Tx& tx) -> Status {
      for (size_t i = from; i < std::min(ids.size(), from + kBatch); ++i) {
        DROVER_RETURN_IF_ERROR(RebuildOne(tx, ids[i]));
      }
      return Status::Ok();
    });
    if (!r.ok()) return r;
  }
  return static_cast<int64_t>(ids.size());
}

}  // namespace drover::workflows
