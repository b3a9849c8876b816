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
#include "alerts/history.h"
#include "alerts/shared_metrics.h"
#include "client/client.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "events/change_log.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;

// Labels as stored: a JSON object, keys sorted (one spelling per label set).
std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  return json::serialize(JsonStrings(labels));
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

// What a webhook receives and a topic carries for one transition.
std::string Payload(const AlertEvent& e, int64_t seq, int64_t now_ms) {
  json::object o{{"tenant", e.tenant},
                 {"alert", e.rule},
                 {"status", TransitionName(e.transition)},
                 {"severity", SeverityName(e.severity)},
                 {"labels", JsonStrings(e.labels)},
                 {"annotations", JsonStrings(e.annotations)},
                 {"value", e.state.value},
                 {"active_since", JsonTime(e.state.active_since_ms)},
                 {"fired_at", JsonTime(e.state.fired_at_ms)},
                 {"at", JsonTime(now_ms)},
                 {"seq", seq}};
  if (e.transition == Transition::kResolved) o["resolved_at"] = JsonTime(e.state.resolved_at_ms);
  return json::serialize(o);
}

// Splits http://host:port/path into the client's address and the request target.
std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  size_t slash = url.find('/', 7);
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kGiveUpAfterMs = 24LL * 3600 * 1000;
constexpr int64_t kHistoryKeptMs = 24LL * 3600 * 1000;
constexpr int64_t kMaxBackoffMs = 5 * 60 * 1000;
constexpr int kDeliveriesPerRound = 50;
constexpr auto kDeliveryBudget = std::chrono::seconds(5);
double ReadNumber(const std::string& s) {
  double v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

struct AlertRunner::Impl {
  Impl(AlertService& a, store::Store& s, coord::Coordinator& c, std::function<std::string()> m,
       PublishFn p, RunnerOptions o)
      : alerts(a),
        store(s),
        coord(c),
        metrics_text(std::move(m)),
        publish(std::move(p)),
        options(o) {}

  AlertService& alerts;
  store::Store& store;
  coord::Coordinator& coord;
  std::function<std::string()> metrics_text;
  PublishFn publish;
  RunnerOptions options;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;

  std::mutex eval_mu;  // one evaluation at a time
  Evaluator evaluator;
  bool leading = false;  // the evaluator's states are this leadership's
  HistoryRecorder history;
  int64_t history_slot = 0;  // the step last recorded (its start, Unix ms)

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
            // A rule deleted while the round ran leaves nothing behind.
            auto exists = tx.QueryInt("SELECT COUNT(*) FROM alerts WHERE tenant = ? AND name = ?",
                                      {e.tenant, e.rule});
            if (!exists.ok()) return exists.status();
            if (*exists == 0) continue;
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
            if (e.transition != Transition::kFiring && e.transition != Transition::kResolved) {
              continue;
            }
            // A silenced rule notifies nobody (read here: a silence set during the round
            // counts).
            auto silenced = tx.QueryInt(
                "SELECT COUNT(*) FROM alert_silences WHERE tenant = ? AND rule = ? AND"
                " until_at > ?",
                {e.tenant, e.rule, *now});
            if (!silenced.ok()) return silenced.status();
            if (*silenced > 0) continue;
            std::string payload = Payload(e, *seq, *now);
            auto queue = [&](const std::string& target) {
              return tx
                  .Exec(
                      "INSERT INTO alert_outbox (tenant, rule, target, payload, attempts,"
                      " next_at, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                      {e.tenant, e.rule, target, payload, *now, *now})
                  .status();
            };
            for (const auto& url : e.webhooks) DROVER_RETURN_IF_ERROR(queue("webhook:" + url));
            for (const auto& topic : e.topics) DROVER_RETURN_IF_ERROR(queue("topic:" + topic));
          }
          return Status::Ok();
        },
        [&done](Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  // Publishes this server's counters and histograms for the leader, when other servers share
  // the database (alone, there is nobody to tell).
  void PublishShared(const std::string& text) {
    if (options.server_id.empty()) return;
    auto view = coord.View();
    if (!view.ok() || view->servers.size() <= 1) return;
    std::string shared = SharedPart(text);
    Status s = store::WriteSync(store, [&](store::Tx& tx) -> Status {
      auto now = tx.NowMillis();
      if (!now.ok()) return now.status();
      return tx
          .Exec(
              "INSERT INTO server_metrics (server, at, text) VALUES (?, ?, ?) ON CONFLICT"
              " (server) DO UPDATE SET at = excluded.at, text = excluded.text",
              {options.server_id, *now, shared})
          .status();
    });
    if (!s.ok()) LogWarn("alerts: publishing this server's metrics: {}", s.message());
  }

  // The other servers' published samples (those published in the last three rounds), each
  // with its origin; older rows are removed.
  std::vector<MetricSample> OthersShared() {
    std::vector<MetricSample> out;
    int64_t fresh_ms = std::max<int64_t>(3 * options.interval.count(), 10000);
    std::vector<std::pair<std::string, std::string>> rows;
    Status s = store.Read([&](store::Tx& tx) {
      return tx.Query(
          "SELECT server, text FROM server_metrics WHERE server <> ? AND at > drover_now_ms() - ?",
          {options.server_id, fresh_ms},
          [&](const store::Row& r) { rows.emplace_back(r.String(0), r.String(1)); });
    });
    if (!s.ok()) {
      LogWarn("alerts: reading the other servers' metrics: {}", s.message());
      return out;
    }
    for (const auto& [server, text] : rows) {
      for (auto& m : ParseExposition(text)) {
        m.origin = server;
        out.push_back(std::move(m));
      }
    }
    (void)store::WriteSync(store, [](store::Tx& tx) {
      return tx.Exec("DELETE FROM server_metrics WHERE at < drover_now_ms() - 86400000").status();
    });
    return out;
  }

  // Once per history step: what the step added to the kept series, written with the step's
  // start as its time; a day is kept.
  void RecordHistory(const std::vector<MetricSample>& samples) {
    int64_t now = NowMillis();
    int64_t step = std::max<int64_t>(options.history_step.count(), 1);
    int64_t slot = now - now % step;
    if (slot == history_slot) return;
    history_slot = slot;
    auto points = history.Record(samples);
    Status s = store::WriteSync(store, [&](store::Tx& tx) -> Status {
      for (const auto& p : points) {
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO metric_history (tenant, name, labels, at, value)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    {p.tenant, p.name, p.labels, slot, p.value})
                .status());
      }
      return tx.Exec("DELETE FROM metric_history WHERE at < ?", {now - kHistoryKeptMs}).status();
    });
    if (!s.ok()) LogWarn("alerts: recording the metric history: {}", s.message());
  }

  void Evaluate() {
    std::lock_guard one(eval_mu);
    std::string text = metrics_text();
    PublishShared(text);
    bool lead = coord.Leader().has_value();
    if (!lead) {
      if (leading) evaluator = Evaluator();  // the next leader goes on from the store
      leading = false;
      return;
    }
    if (!leading) {
      evaluator = Evaluator();
      history = HistoryRecorder();
      history_slot = 0;
      Restore();
      leading = true;
    }
    auto samples = ParseExposition(text);
    for (auto& m : OthersShared()) samples.push_back(std::move(m));
    RecordHistory(samples);
    if (Status s = store::WriteSync(store, SeedDefaultRules); !s.ok()) {
      LogWarn("alerts: giving tenants the built-in rules: {}", s.message());
    }
    auto rules = LoadRules();
    if (!rules.ok()) {
      LogWarn("alerts: reading the rules: {}", rules.status().message());
      return;
    }
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

  // One notification: OK when the receiver took it (a 2xx) or the topic published it.
  Status Send(const std::string& tenant, const std::string& target, const std::string& payload) {
    if (target.starts_with("topic:")) {
      if (!publish) return Status::Unavailable("topics are not available here");
      return publish(tenant, target.substr(6), payload);
    }
    auto [addr, path] = SplitUrl(target.substr(8));
    client::Options o;
    o.addr = addr;
    o.timeout = std::chrono::seconds(5);
    client::Client c(o);
    auto r = c.Do("POST", path, payload,
                  {{"Content-Type", "application/json"}, {"User-Agent", "drover-alerts"}});
    if (!r.ok()) return r.status();
    if (r->status < 200 || r->status > 299) {
      return Status::Unavailable(fmt::format("the receiver answered {}", r->status));
    }
    return Status::Ok();
  }

  // Delivers the notifications that are due, oldest first; a failed one waits longer each time
  // (1 s, 2 s, 4 s, ... up to 5 minutes) and is dropped, with a warning, after a day.
  void Deliver() {
    struct Due {
      int64_t id, attempts, created_at;
      std::string tenant, rule, target, payload;
    };
    std::vector<Due> due;
    int64_t now = NowMillis();
    Status s = store.Read([&](store::Tx& tx) {
      return tx.Query(
          "SELECT id, tenant, rule, target, payload, attempts, created_at FROM alert_outbox"
          " WHERE next_at <= ? ORDER BY id LIMIT ?",
          {now, int64_t{kDeliveriesPerRound}}, [&](const store::Row& r) {
            due.push_back(
                {r.Int(0), r.Int(5), r.Int(6), r.String(1), r.String(2), r.String(3), r.String(4)});
          });
    });
    if (!s.ok()) return LogWarn("alerts: reading the notifications: {}", s.message());
    // A receiver that takes connections but never answers must not hold up the evaluations:
    // each round delivers for at most a few seconds, and the rest waits for the next round.
    auto until = std::chrono::steady_clock::now() + kDeliveryBudget;
    for (const auto& d : due) {
      if (std::chrono::steady_clock::now() >= until) break;
      Status sent = Send(d.tenant, d.target, d.payload);
      bool give_up = !sent.ok() && NowMillis() - d.created_at > kGiveUpAfterMs;
      if (!sent.ok()) {
        LogWarn("alerts: notifying {} of {}/{} failed (attempt {}): {}{}", d.target, d.tenant,
                d.rule, d.attempts + 1, sent.message(), give_up ? "; giving up after a day" : "");
      }
      int64_t backoff =
          std::min<int64_t>(kMaxBackoffMs, 1000LL << std::min<int64_t>(d.attempts, 20));
      Status w = WriteSync(store, [&](store::Tx& tx) -> Status {
        if (sent.ok() || give_up) {
          return tx.Exec("DELETE FROM alert_outbox WHERE id = ?", {d.id}).status();
        }
        return tx
            .Exec("UPDATE alert_outbox SET attempts = ?, next_at = ? WHERE id = ?",
                  {d.attempts + 1, NowMillis() + backoff, d.id})
            .status();
      });
      if (!w.ok()) return LogWarn("alerts: recording a delivery: {}", w.message());
    }
  }

  void Loop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      Evaluate();
      if (coord.Leader()) Deliver();
      lock.lock();
      cv.wait_for(lock, options.interval, [&] { return stopping; });
    }
  }
};

AlertRunner::AlertRunner(AlertService& alerts, store::Store& store, coord::Coordinator& coord,
                         std::function<std::string()> metrics_text, PublishFn publish,
                         RunnerOptions options)
    : impl_(new Impl{alerts, store, coord, std::move(metrics_text), std::move(publish), options}) {}

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

void AlertRunner::Silence(std::string tenant, std::string rule, int64_t for_ms, std::string comment,
                          std::string created_by,
                          std::function<void(Result<alerts::Silence>)> done) {
  auto out = std::make_shared<alerts::Silence>();
  out->comment = std::move(comment);
  out->created_by = std::move(created_by);
  impl_->store.Write(
      [out, tenant = std::move(tenant), rule = std::move(rule), for_ms](store::Tx& tx) -> Status {
        auto n = tx.QueryInt("SELECT COUNT(*) FROM alerts WHERE tenant = ? AND name = ?",
                             {tenant, rule});
        if (!n.ok()) return n.status();
        if (*n == 0) return Status::NotFound(fmt::format("alert '{}' does not exist", rule));
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        out->created_at_ms = *now;
        out->until_ms = *now + for_ms;
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO alert_silences (tenant, rule, until_at, comment, created_by,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, rule) DO UPDATE"
                    " SET until_at = excluded.until_at, comment = excluded.comment,"
                    " created_by = excluded.created_by, created_at = excluded.created_at",
                    {tenant, rule, out->until_ms, out->comment, out->created_by, *now})
                .status());
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        json::object summary{{"until", JsonTime(out->until_ms)}};
        return events::Record(tx, {tenant, "alert", rule, "silenced", json::serialize(summary)});
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(*out);
      });
}

void AlertRunner::Unsilence(std::string tenant, std::string rule,
                            std::function<void(Status)> done) {
  impl_->store.Write(
      [tenant = std::move(tenant), rule = std::move(rule)](store::Tx& tx) -> Status {
        auto n =
            tx.Exec("DELETE FROM alert_silences WHERE tenant = ? AND rule = ?", {tenant, rule});
        if (!n.ok()) return n.status();
        if (*n == 0) {
          return Status::NotFound(fmt::format("alert '{}' has no silence", rule));
        }
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        return events::Record(tx, {tenant, "alert", rule, "unsilenced", ""});
      },
      std::move(done));
}

Result<std::optional<alerts::Silence>> AlertRunner::SilenceOf(const std::string& tenant,
                                                              const std::string& rule) {
  std::optional<alerts::Silence> out;
  int64_t now = NowMillis();
  Status s = impl_->store.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT until_at, comment, created_by, created_at FROM alert_silences"
        " WHERE tenant = ? AND rule = ? AND until_at > ?",
        {tenant, rule, now}, [&](const store::Row& r) {
          out = alerts::Silence{r.Int(0), r.String(1), r.String(2), r.Int(3)};
        });
  });
  if (!s.ok()) return s;
  return out;
}

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

std::chrono::milliseconds AlertRunner::history_step() const { return impl_->options.history_step; }

Result<std::vector<MetricPoint>> AlertRunner::MetricHistory(const std::string& tenant,
                                                            int64_t since_ms,
                                                            const std::string& name, int64_t max) {
  std::vector<MetricPoint> out;
  Status s = impl_->store.Read([&](store::Tx& tx) {
    auto add = [&](const store::Row& r) {
      out.push_back({r.String(0), r.String(1), r.Int(2), r.Int(3)});
    };
    // The server's own series ('') and the tenant's; by series, then time.
    if (name.empty()) {
      return tx.Query(
          "SELECT name, labels, at, value FROM metric_history WHERE tenant IN ('', ?) AND"
          " at >= ? ORDER BY name, labels, at LIMIT ?",
          {tenant, since_ms, max}, add);
    }
    return tx.Query(
        "SELECT name, labels, at, value FROM metric_history WHERE tenant IN ('', ?) AND"
        " name = ? AND at >= ? ORDER BY labels, at LIMIT ?",
        {tenant, name, since_ms, max}, add);
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace drover::alerts
