#include "workflows/executions.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>

#include "common/json.h"
#include "common/log.h"
#include "common/random.h"
#include "events/change_log.h"
#include "runtime/work_queue.h"
#include "workflows/template.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;

std::string NewUuid() {
  std::string h = RandomHex(16);
  h[12] = '4';                                                  // version 4
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // the RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

Status NoExecution(std::string_view id) {
  return Status::NotFound(fmt::format("execution '{}' does not exist", id));
}

constexpr std::string_view kExecutionColumns =
    "SELECT id, tenant, workflow, version, status, run, input, output, error, concurrency_key,"
    " created_at, started_at, ended_at, updated_at, last_seq FROM executions";

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
  return e;
}

// The read model of one execution (steps included) inside a transaction.
Result<std::optional<Execution>> LoadExecution(store::Tx& tx, const std::string& id,
                                               bool for_update) {
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
  DROVER_RETURN_IF_ERROR(tx.Query(
      "SELECT step, data FROM execution_events WHERE execution = ? AND kind = 'signal_received'",
      {id}, [&](const store::Row& r) {
        auto d = ParseJsonOrNull(r.Text(1));
        const json::value* p = d.is_object() ? d.as_object().if_contains("payload") : nullptr;
        e->state.signals.emplace(r.String(0), p ? ToJson(*p) : "null");
      }));
  return e;
}

// One execution being changed inside a write: its read model, what changed, what to do after.
struct Open {
  Execution e;
  std::shared_ptr<const WorkflowSpec> spec;
  std::set<std::string> dirty_steps;
  int64_t now = 0;
  int64_t wake_at = 0;
  std::vector<std::string> woken;  // executions to advance after the commit
  int appended = 0;
};

}  // namespace

std::string ExecutionTopic(std::string_view id) { return "execution/" + std::string(id); }

struct ExecutionService::Impl {
  Impl(store::Store& s, WorkflowService& w, queues::QueueService& q, const Clock& c)
      : store(s), workflows(w), queues(q), clock(c) {}
  store::Store& store;
  WorkflowService& workflows;
  queues::QueueService& queues;
  const Clock& clock;
  std::unique_ptr<runtime::WorkQueue> engine;
  std::unique_ptr<runtime::WorkQueue> sweeper;

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
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    o.now = *now;
    return o;
  }

  // Appends `e` to the log and folds it into the read model.
  Status Append(store::Tx& tx, Open& o, Event e) {
    e.seq = o.e.state.last_seq + 1;
    e.at_ms = o.now;
    DROVER_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO execution_events (execution, seq, event_id, kind,"
                " step, attempt, data, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                {o.e.id, e.seq, e.Id(), e.kind, e.step, int64_t{e.attempt}, e.data, e.at_ms})
            .status());
    const bool ends_task_attempt = (e.kind == kStepSucceeded || e.kind == kStepFailed);
    Apply(o.e.state, e);
    int index = e.step.empty() ? -1 : o.spec->Find(e.step);
    if (index >= 0) o.dirty_steps.insert(e.step);
    if (ends_task_attempt && index >= 0 && o.spec->At(index).type == StepType::kTask) {
      // The attempt's message is done with: gone, or into the dead-letter queue when the step
      // failed for good (poison tasks stay there to be looked at).
      auto& st = o.e.state.steps[e.step];
      if (st.message_id) {
        bool dead = st.status == StepStatus::kFailed;
        DROVER_RETURN_IF_ERROR(
            queues.RemoveInTx(tx, o.e.tenant, o.spec->At(index).queue, st.message_id, dead));
        st.message_id = 0;
      }
    }
    if (e.kind == kExecutionCancelled) {
      for (const auto& sp : o.spec->steps) {
        auto& st = o.e.state.steps[sp.name];
        if (sp.type == StepType::kTask && st.message_id) {
          DROVER_RETURN_IF_ERROR(queues.RemoveInTx(tx, o.e.tenant, sp.queue, st.message_id, false));
          st.message_id = 0;
          o.dirty_steps.insert(sp.name);
        }
      }
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

  // The body of a task attempt's message: what the worker runs, with templates rendered.
  std::string TaskBody(const Open& o, const StepSpec& sp, int attempt) {
    json::value input = ParseJsonOrNull(o.e.state.input);
    std::map<std::string, json::value> outputs;
    RenderContext ctx{
        &input, [&](std::string_view step) -> const json::value* {
          auto it = o.e.state.steps.find(std::string(step));
          if (it == o.e.state.steps.end() || it->second.status != StepStatus::kSucceeded) {
            return nullptr;
          }
          auto [pos, _] = outputs.emplace(it->first, ParseJsonOrNull(it->second.output));
          return &pos->second;
        }};
    json::value fields = ParseJsonOrNull(sp.fields);
    if (!fields.is_object()) fields = json::object();
    json::object body;
    body["execution"] = o.e.id;
    body["workflow"] = o.e.workflow;
    body["step"] = sp.name;
    body["attempt"] = attempt;
    const auto& f = fields.as_object();
    if (const auto* c = f.if_contains("command")) body["command"] = Render(*c, ctx);
    if (const auto* in = f.if_contains("input")) {
      body["input"] = Render(*in, ctx);
    } else {
      body["input"] = nullptr;
    }
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
        if (sp.type == StepType::kTask) {
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
            Event f;
            f.kind = kStepFailed;
            f.step = sp.name;
            f.attempt = w.attempt;
            f.data = "{\"error\":";
            AppendJsonString(f.data,
                             "cannot send to queue " + sp.queue + ": " + sent.status().message());
            f.data += ",\"final\":true}";
            follow.push_back(std::move(f));
          }
        } else {
          // http and scale steps: not run by this version of the engine yet.
          Event f;
          f.kind = kStepFailed;
          f.step = sp.name;
          f.attempt = w.attempt;
          f.data = fmt::format(R"({{"error":"{} steps are not available yet","final":true}})",
                               StepTypeName(sp.type));
          follow.push_back(std::move(f));
        }
      }
      for (auto& e : d.events) DROVER_RETURN_IF_ERROR(Append(tx, o, std::move(e)));
      for (auto& e : follow) DROVER_RETURN_IF_ERROR(Append(tx, o, std::move(e)));
    }
    return Status::Ok();
  }

  // Writes the read model back and notifies followers.
  Status Flush(store::Tx& tx, Open& o, ExecutionStatus before) {
    if (o.appended == 0) return Status::Ok();
    const auto& s = o.e.state;
    std::optional<int64_t> wake;
    if (!IsEnded(s.status) || o.wake_at) wake = o.wake_at ? o.wake_at : std::optional<int64_t>{};
    DROVER_RETURN_IF_ERROR(
        tx.Exec("UPDATE executions SET status = ?, run = ?, output = ?, error = ?,"
                " started_at = ?, ended_at = ?, updated_at = ?, last_seq = ?, wake_at = ?"
                " WHERE id = ?",
                {ExecutionStatusName(s.status), int64_t{s.run}, s.output, s.error, s.started_at_ms,
                 s.ended_at_ms, o.now, s.last_seq,
                 wake ? store::Param(*wake) : store::Param(nullptr), o.e.id})
            .status());
    for (const auto& name : o.dirty_steps) {
      const auto& st = o.e.state.steps.at(name);
      DROVER_RETURN_IF_ERROR(
          tx.Exec(
                "INSERT INTO execution_steps (execution, step, status, attempt, output, error,"
                " scheduled_at, due_at, started_at, ended_at, message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (execution, step) DO UPDATE SET status = excluded.status,"
                " attempt = excluded.attempt, output = excluded.output, error = excluded.error,"
                " scheduled_at = excluded.scheduled_at, due_at = excluded.due_at,"
                " started_at = excluded.started_at, ended_at = excluded.ended_at,"
                " message_id = excluded.message_id",
                {o.e.id, name, StepStatusName(st.status), int64_t{st.attempt}, st.output, st.error,
                 st.scheduled_at_ms, st.due_at_ms, st.started_at_ms, st.ended_at_ms, st.message_id})
              .status());
    }
    DROVER_RETURN_IF_ERROR(tx.Notify(ExecutionTopic(o.e.id)));
    if (IsEnded(s.status) && !IsEnded(before)) {
      DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
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

  // A change of one execution from outside (a worker, a signal, cancel, retry): `change`
  // appends what the caller reports (or answers without appending), then the engine runs.
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
          if (out->appended == 0) return Status::Ok();  // a duplicate: nothing to do
          DROVER_RETURN_IF_ERROR(Run(tx, *out));
          return Flush(tx, *out, before);
        },
        [this, out, done = std::move(done)](Status s) {
          if (!s.ok()) return done(s);
          AfterCommit(*out);
          done(out->e);
        });
  }

  void AfterCommit(const Open& o) {
    if (!engine) return;
    for (const auto& w : o.woken) engine->Add(w);
    if (o.wake_at > o.now) {
      engine->AddAfter(o.e.id, std::chrono::milliseconds(o.wake_at - o.now));
    }
  }

  // Whether the event with this id is in the log already.
  static Result<bool> Has(store::Tx& tx, const Open& o, const std::string& event_id) {
    auto n =
        tx.QueryInt("SELECT COUNT(*) FROM execution_events WHERE execution = ? AND event_id = ?",
                    {o.e.id, event_id});
    if (!n.ok()) return n.status();
    return *n > 0;
  }

  // The checks of a worker's report; OK(false) for a duplicate of a report already taken.
  static Result<bool> CheckReport(store::Tx& tx, Open& o, const std::string& step, int attempt,
                                  std::string_view kind) {
    int index = o.spec->Find(step);
    if (index < 0) return Status::NotFound(fmt::format("execution has no step '{}'", step));
    if (o.spec->At(index).type != StepType::kTask) {
      return Status::Conflict(fmt::format("step '{}' is not a task", step));
    }
    auto dup = Has(tx, o, EventId(kind, step, attempt));
    if (!dup.ok()) return dup.status();
    if (*dup) return false;
    const StepState& st = o.e.state.steps[step];
    if (IsEnded(o.e.state.status) || IsEnded(st.status) || st.status == StepStatus::kPending ||
        attempt < st.attempt) {
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
      Event started;
      started.kind = kStepStarted;
      started.step = e.step;
      started.attempt = attempt;
      DROVER_RETURN_IF_ERROR(Append(tx, o, std::move(started)));
    }
    return Append(tx, o, std::move(e));
  }
};

ExecutionService::ExecutionService(store::Store& store, WorkflowService& workflows,
                                   queues::QueueService& queues, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, workflows, queues, clock)) {}

ExecutionService::~ExecutionService() { Stop(); }

void ExecutionService::Start() {
  if (impl_->engine) return;
  impl_->engine = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "executions", .workers = 2, .clock = &impl_->clock},
      [this](const std::string& id) {
        Status s = Advance(id);
        if (!s.ok() && !s.IsNotFound()) return runtime::Outcome::Failed(s);
        return runtime::Outcome::Done();
      });
  impl_->sweeper = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "execution-sweep", .clock = &impl_->clock},
      [this](const std::string&) {
        auto n = Sweep();
        if (!n.ok()) return runtime::Outcome::Failed(n.status());
        return runtime::Outcome::After(std::chrono::seconds(1));
      });
  impl_->engine->Start();
  impl_->sweeper->Start();
  impl_->sweeper->Add("sweep");
}

void ExecutionService::Stop() {
  if (impl_->sweeper) impl_->sweeper->Stop(runtime::WorkQueue::kUntilDone);
  if (impl_->engine) impl_->engine->Stop(runtime::WorkQueue::kUntilDone);
}

void ExecutionService::Create(std::string tenant, std::string workflow, std::string input_json,
                              std::string idempotency_key,
                              std::function<void(Result<Created>)> done) {
  auto out = std::make_shared<Created>();
  out->execution.tenant = std::move(tenant);
  out->execution.workflow = std::move(workflow);
  out->execution.state.input = std::move(input_json);
  Impl* impl = impl_.get();
  impl_->store.Write(
      [impl, out, key = std::move(idempotency_key)](store::Tx& tx) -> Status {
        Execution& e = out->execution;
        out->replayed = false;
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
              e = std::move(**loaded);
              out->replayed = true;
              return Status::Ok();
            }
          }
        }
        auto version = impl->workflows.CurrentVersionInTx(tx, e.tenant, e.workflow);
        if (!version.ok()) return version.status();
        auto spec = impl->workflows.SpecInTx(tx, e.tenant, e.workflow, *version);
        if (!spec.ok()) return spec.status();
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        e.id = NewUuid();
        e.version = *version;
        if ((*spec)->concurrency) {
          json::value input = ParseJsonOrNull(e.state.input);
          e.concurrency_key = RenderText((*spec)->concurrency->key, {&input, nullptr});
        }
        Event created;
        created.seq = 1;
        created.kind = kExecutionCreated;
        created.at_ms = *now;
        json::object data;
        data["input"] = ParseJsonOrNull(e.state.input);
        data["workflow"] = e.workflow;
        data["version"] = e.version;
        json::array names;
        for (int i = 0; i < (*spec)->size(); ++i)
          names.push_back(json::string((*spec)->At(i).name));
        data["steps"] = std::move(names);
        created.data = ToJson(data);
        std::string input = std::move(e.state.input);
        e.state = ExecutionState{};
        Apply(e.state, created);
        e.state.input = std::move(input);
        e.updated_at_ms = *now;
        // A key another server is inserting right now: its row wins (the unique index), and
        // this write fails rather than answering a second execution.
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO executions (id, tenant, workflow, version, status, run, input,"
                    " output, error, idempotency_key, concurrency_key, created_at, started_at,"
                    " ended_at, updated_at, last_seq, wake_at)"
                    " VALUES (?, ?, ?, ?, 'pending', 0, ?, 'null', '', ?, ?, ?, 0, 0, ?, 1, ?)",
                    {e.id, e.tenant, e.workflow, e.version, e.state.input, key, e.concurrency_key,
                     *now, *now, *now})
                .status());
        return tx
            .Exec(
                "INSERT INTO execution_events (execution, seq, event_id, kind, step,"
                " attempt, data, at) VALUES (?, 1, ?, ?, '', 0, ?, ?)",
                {e.id, created.Id(), created.kind, created.data, *now})
            .status();
      },
      [impl, out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        if (!out->replayed && impl->engine) impl->engine->Add(out->execution.id);
        done(std::move(*out));
      });
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
  std::string before_id;
  if (!cursor.empty()) {
    size_t slash = cursor.find('/');
    if (slash == std::string::npos) return Status::InvalidArgument("cursor: not one of ours");
    try {
      before_at = std::stoll(cursor.substr(0, slash));
    } catch (...) {
      return Status::InvalidArgument("cursor: not one of ours");
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
                     cursor.empty() ? std::string_view("\x7f") : before_id, int64_t{limit} + 1},
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
    auto t = tx.Query("SELECT tenant FROM executions WHERE id = ?", {id},
                      [&](const store::Row& r) { found = r.Text(0) == tenant; });
    DROVER_RETURN_IF_ERROR(t);
    if (!found) return Status::Ok();
    return tx.Query(
        "SELECT seq, kind, step, attempt, data, at FROM execution_events WHERE execution = ?"
        " AND seq > ? ORDER BY seq LIMIT ?",
        {id, after, int64_t{limit}}, [&](const store::Row& r) {
          Event e;
          e.seq = r.Int(0);
          e.kind = r.String(1);
          e.step = r.String(2);
          e.attempt = static_cast<int>(r.Int(3));
          e.data = r.String(4);
          e.at_ms = r.Int(5);
          out.push_back(std::move(e));
        });
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
        Event e;
        e.kind = kStepSucceeded;
        e.step = step;
        e.attempt = attempt;
        e.data = "{\"output\":" + output + "}";
        return impl->Report(tx, o, attempt, std::move(e));
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
        Event e;
        e.kind = kStepFailed;
        e.step = step;
        e.attempt = attempt;
        e.data = "{\"error\":";
        AppendJsonString(e.data, error);
        e.data += final ? ",\"final\":true}" : ",\"final\":false}";
        return impl->Report(tx, o, attempt, std::move(e));
      },
      std::move(done));
}

void ExecutionService::Signal(std::string tenant, std::string id, std::string name,
                              std::string payload_json,
                              std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl, name = std::move(name), payload = std::move(payload_json)](store::Tx& tx,
                                                                        Open& o) -> Status {
        if (IsEnded(o.e.state.status)) {
          return Status::Conflict(
              fmt::format("the execution has {}", ExecutionStatusName(o.e.state.status)));
        }
        if (o.e.state.signals.count(name)) return Status::Ok();  // once per name
        Event e;
        e.kind = kSignalReceived;
        e.step = name;
        e.data = "{\"payload\":" + payload + "}";
        return impl->Append(tx, o, std::move(e));
      },
      std::move(done));
}

void ExecutionService::Cancel(std::string tenant, std::string id,
                              std::function<void(Result<Execution>)> done) {
  Impl* impl = impl_.get();
  impl_->Change(
      std::move(tenant), std::move(id),
      [impl](store::Tx& tx, Open& o) -> Status {
        if (IsEnded(o.e.state.status)) {
          return Status::Conflict(
              fmt::format("the execution has {}", ExecutionStatusName(o.e.state.status)));
        }
        Event e;
        e.kind = kExecutionCancelled;
        e.attempt = o.e.state.run;
        return impl->Append(tx, o, std::move(e));
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
              fmt::format("only a failed or cancelled execution can be "
                          "retried; this one is {}",
                          ExecutionStatusName(st)));
        }
        Event e;
        e.kind = kExecutionRetried;
        e.attempt = o.e.state.run + 1;
        return impl->Append(tx, o, std::move(e));
      },
      std::move(done));
}

Status ExecutionService::Advance(const std::string& id) {
  auto out = std::make_shared<Open>();
  Impl* impl = impl_.get();
  Status result = store::WriteSync(impl_->store, [impl, out, id](store::Tx& tx) -> Status {
    auto o = impl->OpenExecution(tx, "", id);
    if (!o.ok()) return o.status();
    *out = std::move(*o);
    ExecutionStatus before = out->e.state.status;
    DROVER_RETURN_IF_ERROR(impl->Run(tx, *out));
    if (out->appended == 0) {
      // Nothing happened: only the wake time may move (a held execution, a timer not due).
      std::optional<int64_t> wake;
      if (out->wake_at) wake = out->wake_at;
      return tx
          .Exec("UPDATE executions SET wake_at = ? WHERE id = ?",
                {wake ? store::Param(*wake) : store::Param(nullptr), id})
          .status();
    }
    return impl->Flush(tx, *out, before);
  });
  if (result.ok()) impl_->AfterCommit(*out);
  return result;
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

Result<int64_t> ExecutionService::Rebuild() {
  std::vector<std::string> ids;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query("SELECT id FROM executions ORDER BY id", {},
                    [&](const store::Row& r) { ids.push_back(r.String(0)); });
  });
  if (!s.ok()) return s;
  for (const auto& id : ids) {
    Status r = store::WriteSync(impl_->store, [&](store::Tx& tx) -> Status {
      std::vector<Event> log;
      DROVER_RETURN_IF_ERROR(tx.Query(
          "SELECT seq, kind, step, attempt, data, at FROM execution_events WHERE execution = ?"
          " ORDER BY seq",
          {id}, [&](const store::Row& row) {
            Event e;
            e.seq = row.Int(0);
            e.kind = row.String(1);
            e.step = row.String(2);
            e.attempt = static_cast<int>(row.Int(3));
            e.data = row.String(4);
            e.at_ms = row.Int(5);
            log.push_back(std::move(e));
          }));
      ExecutionState st = Fold(log);
      DROVER_RETURN_IF_ERROR(
          tx.Exec("UPDATE executions SET status = ?, run = ?, output = ?, error = ?,"
                  " started_at = ?, ended_at = ?, last_seq = ? WHERE id = ?",
                  {ExecutionStatusName(st.status), int64_t{st.run}, st.output, st.error,
                   st.started_at_ms, st.ended_at_ms, st.last_seq, id})
              .status());
      DROVER_RETURN_IF_ERROR(
          tx.Exec("DELETE FROM execution_steps WHERE execution = ?", {id}).status());
      for (const auto& [name, step] : st.steps) {
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO execution_steps (execution, step, status, attempt, output,"
                    " error, scheduled_at, due_at, started_at, ended_at, message_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    {id, name, StepStatusName(step.status), int64_t{step.attempt}, step.output,
                     step.error, step.scheduled_at_ms, step.due_at_ms, step.started_at_ms,
                     step.ended_at_ms, step.message_id})
                .status());
      }
      return Status::Ok();
    });
    if (!r.ok()) return r;
  }
  return static_cast<int64_t>(ids.size());
}

}  // namespace drover::workflows
