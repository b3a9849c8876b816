#include "workflows/history.h"

#include <boost/json.hpp>
#include <set>

#include "common/duration.h"
#include "common/json.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;

json::object Data(const Event& e) {
  std::error_code ec;
  auto v = json::parse(e.data, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}

std::string Text(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

std::string JsonOf(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v ? ToJson(*v) : "null";
}

int64_t Int(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

bool Bool(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

// Steps not ended take `to` (an execution that ended).
void EndOpenSteps(ExecutionState& s, StepStatus to, const std::set<std::string>* only = nullptr) {
  for (auto& [name, st] : s.steps) {
    if (only && !only->count(name)) continue;
    if (!IsEnded(st.status)) {
      st.status = to;
      st.message_id = 0;  // removed from its queue with the step
    }
  }
}

std::string ObjectWith(std::string_view key, const std::string& json_value) {
  std::string out = "{";
  AppendJsonString(out, key);
  out += ':';
  out += json_value;
  out += '}';
  return out;
}

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

std::string FailedData(std::string_view error, bool final) {
  std::string out = "{\"error\":" + Quoted(error);
  out += final ? ",\"final\":true}" : ",\"final\":false}";
  return out;
}

}  // namespace

std::string_view ExecutionStatusName(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kPending:
      return "pending";
    case ExecutionStatus::kRunning:
      return "running";
    case ExecutionStatus::kSucceeded:
      return "succeeded";
    case ExecutionStatus::kFailed:
      return "failed";
    case ExecutionStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::string_view StepStatusName(StepStatus s) {
  switch (s) {
    case StepStatus::kPending:
      return "pending";
    case StepStatus::kScheduled:
      return "scheduled";
    case StepStatus::kRunning:
      return "running";
    case StepStatus::kSucceeded:
      return "succeeded";
    case StepStatus::kFailed:
      return "failed";
    case StepStatus::kSkipped:
      return "skipped";
    case StepStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

bool ParseExecutionStatus(std::string_view s, ExecutionStatus* out) {
  for (auto v : {ExecutionStatus::kPending, ExecutionStatus::kRunning, ExecutionStatus::kSucceeded,
                 ExecutionStatus::kFailed, ExecutionStatus::kCancelled}) {
    if (ExecutionStatusName(v) == s) {
      *out = v;
      return true;
    }
  }
  return false;
}

bool ParseStepStatus(std::string_view s, StepStatus* out) {
  for (auto v :
       {StepStatus::kPending, StepStatus::kScheduled, StepStatus::kRunning, StepStatus::kSucceeded,
        StepStatus::kFailed, StepStatus::kSkipped, StepStatus::kCancelled}) {
    if (StepStatusName(v) == s) {
      *out = v;
      return true;
    }
  }
  return false;
}

bool IsEnded(StepStatus s) {
  return s == StepStatus::kSucceeded || s == StepStatus::kFailed || s == StepStatus::kSkipped ||
         s == StepStatus::kCancelled;
}

bool IsEnded(ExecutionStatus s) {
  return s == ExecutionStatus::kSucceeded || s == ExecutionStatus::kFailed ||
         s == ExecutionStatus::kCancelled;
}

std::string EventId(std::string_view kind, std::string_view step, int attempt) {
  std::string id(kind);
  id += '/';
  id += step;
  id += '/';
  id += std::to_string(attempt);
  return id;
}

std::string Event::Id() const { return EventId(kind, step, attempt); }

Event MakeEvent(std::string_view kind, std::string step, int attempt, std::string data) {
  Event e;
  e.kind = kind;
  e.step = std::move(step);
  e.attempt = attempt;
  e.data = std::move(data);
  return e;
}

void Apply(ExecutionState& s, const Event& e) {
  s.last_seq = std::max(s.last_seq, e.seq);
  const json::object d = Data(e);
  const std::string_view k = e.kind;
  if (k == kExecutionCreated) {
    s.input = JsonOf(d, "input");
    s.created_at_ms = e.at_ms;
    if (const auto* names = d.if_contains("steps"); names && names->is_array()) {
      for (const auto& n : names->as_array()) {
        if (n.is_string()) s.steps.try_emplace(std::string(n.as_string()));
      }
    }
  } else if (k == kExecutionStarted) {
    if (s.status == ExecutionStatus::kPending) s.status = ExecutionStatus::kRunning;
    if (!s.started_at_ms) s.started_at_ms = e.at_ms;
  } else if (k == kStepScheduled) {
    auto& st = s.steps[e.step];
    st.status = StepStatus::kScheduled;
    st.attempt = e.attempt;
    st.scheduled_at_ms = e.at_ms;
    st.due_at_ms = Int(d, "due_at") ? Int(d, "due_at") : e.at_ms;
    st.message_id = Int(d, "message");
    st.started_at_ms = st.ended_at_ms = 0;
    st.output = "null";
  } else if (k == kStepStarted) {
    auto& st = s.steps[e.step];
    st.status = StepStatus::kRunning;
    st.attempt = std::max(st.attempt, e.attempt);
    st.started_at_ms = e.at_ms;
  } else if (k == kStepSucceeded) {
    auto& st = s.steps[e.step];
    st.status = StepStatus::kSucceeded;
    st.attempt = std::max(st.attempt, e.attempt);
    st.output = JsonOf(d, "output");
    st.error.clear();
    st.ended_at_ms = e.at_ms;
    st.message_id = 0;  // the attempt's message is done with
  } else if (k == kStepFailed) {
    auto& st = s.steps[e.step];
    st.message_id = 0;
    st.attempt = std::max(st.attempt, e.attempt);
    st.error = Text(d, "error");
    st.ended_at_ms = e.at_ms;
    st.status = Bool(d, "final") ? StepStatus::kFailed : StepStatus::kPending;
  } else if (k == kSignalReceived) {
    s.signals.emplace(e.step, JsonOf(d, "payload"));
  } else if (k == kExecutionSucceeded) {
    s.status = ExecutionStatus::kSucceeded;
    s.output = JsonOf(d, "output");
    s.ended_at_ms = e.at_ms;
    EndOpenSteps(s, StepStatus::kSkipped);
  } else if (k == kExecutionFailed) {
    s.status = ExecutionStatus::kFailed;
    s.error = Text(d, "error");
    s.ended_at_ms = e.at_ms;
    std::set<std::string> main;
    for (const auto& [name, st] : s.steps) main.insert(name);
    // on_failure steps (named in the event) stay pending: they run now.
    if (const auto* keep = d.if_contains("on_failure"); keep && keep->is_array()) {
      for (const auto& n : keep->as_array()) {
        if (n.is_string()) main.erase(std::string(n.as_string()));
      }
    }
    EndOpenSteps(s, StepStatus::kSkipped, &main);
  } else if (k == kExecutionCancelled) {
    s.status = ExecutionStatus::kCancelled;
    s.ended_at_ms = e.at_ms;
    EndOpenSteps(s, StepStatus::kCancelled);
  } else if (k == kExecutionRetried) {
    s.status = ExecutionStatus::kRunning;
    s.run = std::max(s.run, e.attempt);
    s.error.clear();
    s.output = "null";
    s.ended_at_ms = 0;
    for (auto& [name, st] : s.steps) {
      if (st.status != StepStatus::kSucceeded) {
        st.status = StepStatus::kPending;
        st.error.clear();
        st.ended_at_ms = 0;
      }
    }
  }
}

ExecutionState Fold(const std::vector<Event>& log) {
  ExecutionState s;
  std::set<std::string> seen;
  for (const auto& e : log) {
    if (seen.insert(e.Id()).second) Apply(s, e);
  }
  return s;
}

Decision Decide(const WorkflowSpec& spec, const ExecutionState& state, int64_t now_ms,
                bool may_start) {
  Decision out;
  ExecutionState s = state;
  const int n = static_cast<int>(spec.steps.size());
  auto step = [&](int i) -> StepState& { return s.steps[spec.At(i).name]; };
  auto wake = [&](int64_t at) {
    if (at > now_ms && (out.wake_at_ms == 0 || at < out.wake_at_ms)) out.wake_at_ms = at;
  };
  auto emit = [&](Event e) {
    e.at_ms = now_ms;
    Apply(s, e);
    out.events.push_back(std::move(e));
  };
  auto schedule = [&](int i) {
    const auto& sp = spec.At(i);
    int attempt = step(i).attempt + 1;
    int64_t due = attempt > 1 ? now_ms + sp.retry.DelayBefore(attempt).count() : now_ms;
    emit(MakeEvent(kStepScheduled, sp.name, attempt, ObjectWith("due_at", std::to_string(due))));
    if (sp.type == StepType::kTask) out.work.push_back({i, attempt, due});
  };
  // Moves a scheduled or running step along: started when due, sleeps and waits ended, timeouts.
  auto advance = [&](int i) {
    const auto& sp = spec.At(i);
    auto& st = step(i);
    if (st.status == StepStatus::kScheduled && sp.type != StepType::kTask) {
      if (st.due_at_ms > now_ms) return wake(st.due_at_ms);
      emit(MakeEvent(kStepStarted, sp.name, st.attempt, "{}"));
      if (sp.type == StepType::kHttp || sp.type == StepType::kScale) {
        out.work.push_back({i, st.attempt, now_ms});
      }
    }
    if (st.status == StepStatus::kScheduled && sp.type == StepType::kTask && sp.timeout) {
      // A task no worker has taken yet: its timeout runs from when it could be received.
      int64_t end = st.due_at_ms + sp.timeout->count();
      if (now_ms < end) return wake(end);
      bool final = st.attempt >= sp.retry.max_attempts;
      return emit(MakeEvent(kStepFailed, sp.name, st.attempt,
                            FailedData("timed out after " + FormatDuration(*sp.timeout), final)));
    }
    if (st.status != StepStatus::kRunning) return;
    if (sp.type == StepType::kSleep) {
      int64_t end = st.started_at_ms + sp.duration.count();
      if (now_ms >= end) return emit(MakeEvent(kStepSucceeded, sp.name, st.attempt, "{}"));
      wake(end);
    }
    if (sp.type == StepType::kWait) {
      if (auto it = s.signals.find(sp.signal); it != s.signals.end()) {
        return emit(
            MakeEvent(kStepSucceeded, sp.name, st.attempt, ObjectWith("output", it->second)));
      }
    }
    if (sp.timeout) {
      int64_t end = st.started_at_ms + sp.timeout->count();
      if (now_ms >= end) {
        bool final = st.attempt >= sp.retry.max_attempts;
        return emit(MakeEvent(kStepFailed, sp.name, st.attempt,
                              FailedData("timed out after " + FormatDuration(*sp.timeout), final)));
      }
      wake(end);
    }
  };

  for (int round = 0; round < 4 * spec.size() + 8; ++round) {
    size_t before = out.events.size();
    if (s.status == ExecutionStatus::kPending) {
      if (!may_start) break;
      emit(MakeEvent(kExecutionStarted, "", s.run, "{}"));
    }
    if (s.status == ExecutionStatus::kRunning) {
      int failed = -1;
      bool all_done = true;
      for (int i = 0; i < n; ++i) {
        if (step(i).status == StepStatus::kFailed && failed < 0) failed = i;
        if (step(i).status != StepStatus::kSucceeded) all_done = false;
      }
      if (failed >= 0) {
        std::string data = "{\"error\":" + Quoted("step " + spec.steps[failed].name +
                                                  " failed: " + step(failed).error);
        data += ",\"on_failure\":[";
        for (size_t j = 0; j < spec.on_failure.size(); ++j) {
          data += (j ? "," : "") + Quoted(spec.on_failure[j].name);
        }
        data += "]}";
        emit(MakeEvent(kExecutionFailed, "", s.run, std::move(data)));
        continue;
      }
      if (all_done) {
        emit(MakeEvent(kExecutionSucceeded, "", s.run, ObjectWith("output", step(n - 1).output)));
        break;
      }
      for (int i = 0; i < n; ++i) {
        auto& st = step(i);
        if (st.status == StepStatus::kPending) {
          bool ready = true;
          for (int j : spec.steps[i].needs)
            ready = ready && step(j).status == StepStatus::kSucceeded;
          if (ready) schedule(i);
        }
        advance(i);
      }
    } else if (s.status == ExecutionStatus::kFailed) {
      // on_failure steps, one after another.
      for (int i = n; i < spec.size(); ++i) {
        auto& st = step(i);
        if (st.status == StepStatus::kPending) schedule(i);
        advance(i);
        if (!IsEnded(step(i).status) && step(i).status != StepStatus::kPending) break;
      }
    }
    if (out.events.size() == before) break;
  }
  return out;
}

}  // namespace drover::workflows
