#include "alerts/runner.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <thread>

#include "alerts/evaluator.h"
#include "alerts/exposition.h"
#include "common/json.h"
#include "common/log.h"
#include "events/change_log.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return json::serialize(o);
}

std::map<std::string, std::string> ReadLabels(const std::string& text) {
  std::map<std::string, std::string> out;
  auto v = ParseJsonOrNull(text);
  if (!v.is_object()) return out;
  for (const auto& [k, x] : v.as_object()) {
    if (x.is_string()) out[std::string(k)] = std::string(x.as_string());
  }
  return out;
}

std::string Number(double v) { return fmt::format("{}", v); }
double ReadNumber(const std::string& s) {
  double v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

struct AlertRunner::Impl {
  Impl(AlertService& a, store::Store& s, coord::Coordinator& c, std::function<std::string()> m,
       RunnerOptions o)
      : alerts(a), store(s), coord(c), metrics_text(std::move(m)), options(o) {}

  AlertService& alerts;
  store::Store& store;
  coord::Coordinator& coord;
  std::function<std::string()> metrics_text;
  RunnerOptions options;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;

  std::mutex eval_mu;  // one evaluation at a time
  Evaluator evaluator;
  bool leading = false;  // the evaluator's states are this leadership's

  // Every tenant's rules (a store read); the ones that do not parse are skipped.
  Result<std::vector<Rule>> LoadRules() {
    std::vector<Rule> rules;
    std::vector<events::SpecRow> rows;
    Status s = store.Read([&](store::Tx& tx) {
      return tx.Query("SELECT tenant, name, spec, created_at, updated_at, modify_index FROM alerts",
                      {}, [&](const store::Row& r) {
                        events::SpecRow x;
                        x.tenant = r.String(0);
                        x.name = r.String(1);
                        x.spec_json = r.String(2);
                        rows.push_back(std::move(x));
                      });
    });
    if (!s.ok()) return s;
    for (const auto& row : rows) {
      auto spec = ParseRuleDocument(ParseJsonOrNull(row.spec_json), row.name);
      if (!spec.ok()) {
        LogWarn("alert {}/{} skipped: its stored spec does not parse", row.tenant, row.name);
        continue;
      }
      rules.push_back({row.tenant, row.name, std::move(*spec)});
    }
    return rules;
  }

  // The stored states, as the evaluator's starting point when this server becomes leader (a
  // firing alert goes on firing, not firing again).
  void Restore() {
    Status s = store.Read([&](store::Tx& tx) {
      return tx.Query(
          "SELECT tenant, rule, labels, phase, value, active_since, fired_at FROM alert_states", {},
          [&](const store::Row& r) {
            AlertState st;
            st.phase = r.String(3) == "firing" ? Phase::kFiring : Phase::kPending;
            st.value = ReadNumber(r.String(4));
            st.active_since_ms = r.Int(5);
            st.fired_at_ms = r.Int(6);
            evaluator.Restore(r.String(0), r.String(1), ReadLabels(r.String(2)), st);
          });
    });
    if (!s.ok()) LogWarn("alerts: reading the stored states: {}", s.message());
  }

  // Writes the round's transitions in one transaction.
  Status Record(const std::vector<AlertEvent>& events) {
    std::promise<Status> done;
    store.Write(
        [&events](store::Tx& tx) -> Status {
          auto now = tx.NowMillis();
          if (!now.ok()) return now.status();
          for (const auto& e : events) {
            std::string key = LabelsJson(e.series_labels);
            std::string labels = LabelsJson(e.labels);
            std::string_view what = TransitionName(e.transition);
            if (e.state.phase == Phase::kInactive) {
              DROVER_RETURN_IF_ERROR(
                  tx.Exec("DELETE FROM alert_states WHERE tenant = ? AND rule = ? AND labels = ?",
                          {e.tenant, e.rule, key})
                      .status());
            } else {
              DROVER_RETURN_IF_ERROR(
                  tx.Exec("INSERT INTO alert_states (tenant, rule, labels, phase, value,"
                          " active_since, fired_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                          " ON CONFLICT (tenant, rule, labels) DO UPDATE SET phase ="
                          " excluded.phase, value = excluded.value, active_since ="
                          " excluded.active_since, fired_at = excluded.fired_at, updated_at ="
                          " excluded.updated_at",
                          {e.tenant, e.rule, key, PhaseName(e.state.phase), Number(e.state.value),
                           e.state.active_since_ms, e.state.fired_at_ms, *now})
                      .status());
            }
            auto seq = tx.NextIndex();
            if (!seq.ok()) return seq.status();
            json::object annotations;
            for (const auto& [k, v] : e.annotations) annotations[k] = v;
            DROVER_RETURN_IF_ERROR(
                tx.Exec("INSERT INTO alert_history (tenant, rule, seq, at, labels, transition,"
                        " value, annotations) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        {e.tenant, e.rule, *seq, *now, labels, what, Number(e.state.value),
                         json::serialize(annotations)})
                    .status());
            json::object summary{{"labels", ParseJsonOrNull(labels)},
                                 {"value", e.state.value},
                                 {"severity", SeverityName(e.severity)}};
            DROVER_RETURN_IF_ERROR(events::Record(
                tx, {e.tenant, "alert", e.rule, std::string(what), json::serialize(summary)}));
          }
          return Status::Ok();
        },
        [&done](Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  void Evaluate() {
    std::lock_guard one(eval_mu);
    bool lead = coord.Leader().has_value();
    if (!lead) {
      if (leading) evaluator = Evaluator();  // the next leader goes on from the store
      leading = false;
      return;
    }
    if (!leading) {
      evaluator = Evaluator();
      Restore();
      leading = true;
    }
    auto rules = LoadRules();
    if (!rules.ok()) {
      LogWarn("alerts: reading the rules: {}", rules.status().message());
      return;
    }
    auto samples = ParseExposition(metrics_text());
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto events = evaluator.Evaluate(*rules, samples, now);
    if (events.empty()) return;
    if (Status s = Record(events); !s.ok()) {
      // Not recorded: the next leader (or this one, after a restart) starts from the store.
      LogWarn("alerts: recording {} transitions: {}", events.size(), s.message());
      leading = false;
    }
  }

  void Loop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      Evaluate();
      lock.lock();
      cv.wait_for(lock, options.interval, [&] { return stopping; });
    }
  }
};

AlertRunner::AlertRunner(AlertService& alerts, store::Store& store, coord::Coordinator& coord,
                         std::function<std::string()> metrics_text, RunnerOptions options)
    : impl_(new Impl{alerts, store, coord, std::move(metrics_text), options}) {}

AlertRunner::~AlertRunner() { Stop(); }

void AlertRunner::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->thread.joinable() || impl_->stopping) return;
  impl_->thread = std::thread([this] { impl_->Loop(); });
}

void AlertRunner::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void AlertRunner::EvaluateOnce() { impl_->Evaluate(); }

Result<std::vector<StoredAlert>> AlertRunner::Active(const std::string& tenant,
                                                     const std::string& rule) {
  std::vector<StoredAlert> out;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT labels, phase, value, active_since, fired_at, updated_at FROM alert_states"
        " WHERE tenant = ? AND rule = ? ORDER BY labels",
        {tenant, rule}, [&](const store::Row& r) {
          out.push_back({ReadLabels(r.String(0)), r.String(1), ReadNumber(r.String(2)), r.Int(3),
                         r.Int(4), r.Int(5)});
        });
  });
  if (!s.ok()) return s;
  return out;
}

Result<Page<HistoryEntry>> AlertRunner::History(const std::string& tenant, const std::string& rule,
                                                const std::string& cursor, int limit) {
  int64_t before = std::numeric_limits<int64_t>::max();
  if (!cursor.empty()) {
    auto [p, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), before);
    if (ec != std::errc() || p != cursor.data() + cursor.size()) {
      return Status::Validation({{"cursor", "must be a cursor from a previous page"}});
    }
  }
  Page<HistoryEntry> page;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT seq, at, labels, transition, value, annotations FROM alert_history"
        " WHERE tenant = ? AND rule = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        {tenant, rule, before, int64_t{limit} + 1}, [&](const store::Row& r) {
          HistoryEntry h;
          h.seq = r.Int(0);
          h.at_ms = r.Int(1);
          h.labels = ReadLabels(r.String(2));
          h.transition = r.String(3);
          h.value = ReadNumber(r.String(4));
          h.annotations = ReadLabels(r.String(5));
          page.items.push_back(std::move(h));
        });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const HistoryEntry& h) { return std::to_string(h.seq); });
  return page;
}

}  // namespace drover::alerts
