// Alert rules over HTTP on real servers, both backends: field errors, tenant isolation, the
// change feed and audit, apply-style idempotence.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "testing/store_fixture.h"
#include "testing/temp_dir.h"
#include "testing/test_server.h"
#include "upstream_process.h"

namespace drover {
namespace {

using testing::TestServer;

class Alerts : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Alerts);

boost::json::value Json(const client::Response& r) { return boost::json::parse(r.body); }

constexpr const char* kRule =
    R"({"signal":"drover_queue_messages{queue=\"orders-dlq\",state=\"visible\"}",)"
    R"("condition":{"threshold":"> 0"},"for":"5m","severity":"critical"})";

TEST_P(Alerts, RulesAreResourcesOfTheirTenant) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto r = admin.Do("PUT", "/v1/alerts/orders-dlq", kRule);
  ASSERT_EQ(r->status, 201) << r->body;
  auto v = Json(*r);
  EXPECT_EQ(v.at("name").as_string(), "orders-dlq");
  EXPECT_EQ(v.at("spec").at("severity").as_string(), "critical");
  EXPECT_EQ(admin.Do("PUT", "/v1/alerts/orders-dlq", kRule)->Header("X-Drover-Unchanged"), "true");
  // A YAML document with kind and name, as drover apply sends.
  auto y = admin.Do("PUT", "/v1/alerts/errors",
                    "kind: Alert\nname: errors\nspec:\n  signal: drover_gateway_requests_total"
                    "{code=\"5xx\"}\n  transform: rate\n  condition: {anomaly: {k: 5}}\n",
                    {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(y->status, 201) << y->body;
  auto names = [](client::Client& who) {
    std::set<std::string> out;
    auto list = who.Do("GET", "/v1/alerts");
    if (!list.ok() || list->status != 200) return out;
    auto lv = Json(*list);
    for (const auto& i : lv.at("items").as_array())
      out.insert(std::string(i.at("name").as_string()));
    return out;
  };
  EXPECT_TRUE(names(admin).count("errors"));
  EXPECT_TRUE(names(admin).count("orders-dlq"));

  // Another tenant sees none of them and may use the same names.
  auto kr = admin.Do("POST", "/v1/keys", R"({"name":"other","role":"user","tenant":"other"})");
  ASSERT_EQ(kr->status, 201) << kr->body;
  auto other = s.NewClient(std::string(Json(*kr).at("key").as_string()));
  EXPECT_EQ(other.Do("GET", "/v1/alerts/orders-dlq")->status, 404);
  EXPECT_FALSE(names(other).count("orders-dlq"));
  EXPECT_FALSE(names(other).count("errors"));
  EXPECT_EQ(other.Do("PUT", "/v1/alerts/orders-dlq", kRule)->status, 201);
  EXPECT_EQ(other.Do("DELETE", "/v1/alerts/orders-dlq")->status, 204);
  EXPECT_EQ(admin.Do("GET", "/v1/alerts/orders-dlq")->status, 200);

  // Changes are in the audit log.
  auto audit = admin.Do("GET", "/v1/audit?kind=alert");
  ASSERT_EQ(audit->status, 200) << audit->body;
  EXPECT_NE(audit->body.find("orders-dlq"), std::string::npos) << audit->body;

  EXPECT_EQ(admin.Do("DELETE", "/v1/alerts/orders-dlq")->status, 204);
  EXPECT_EQ(admin.Do("DELETE", "/v1/alerts/orders-dlq")->status, 404);
  EXPECT_EQ(admin.Do("GET", "/v1/alerts/orders-dlq")->status, 404);
}

TEST_P(Alerts, BadRulesGetFieldErrorsAndChangeNothing) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  struct Case {
    std::string path, body;
    int status;
    const char* field;
  };
  const Case cases[] = {
      {"/v1/alerts/Bad_Name", kRule, 400, ""},
      {"/v1/alerts/a", "{", 400, ""},
      {"/v1/alerts/a", "[]", 400, ""},
      {"/v1/alerts/a", "{}", 422, "signal"},
      {"/v1/alerts/a", R"({"signal":"m{a=b}","condition":{"threshold":"> 0"}})", 422, "signal"},
      {"/v1/alerts/a", R"({"signal":"m","condition":{"threshold":"about 3"}})", 422,
       "condition.threshold"},
      {"/v1/alerts/a", R"({"signal":"m","condition":{"anomaly":{"k":99}}})", 422,
       "condition.anomaly.k"},
      {"/v1/alerts/a", R"({"signal":"m","condition":{"anomaly":{}},"for":"-1s"})", 422, "for"},
      {"/v1/alerts/a", R"({"signal":"m","condition":{"anomaly":{}},"annotations":{"s":"{{x}}"}})",
       422, "annotations.s"},
      {"/v1/alerts/a",
       R"({"signal":"m","condition":{"anomaly":{}},"notify":{"webhooks":["file:///etc/passwd"]}})",
       422, "notify.webhooks[0]"},
      {"/v1/alerts/a",
       R"({"kind":"Alert","name":"b","spec":{"signal":"m","condition":{"anomaly":{}}}})", 422,
       "name"},
  };
  for (const auto& k : cases) {
    auto r = c.Do("PUT", k.path, k.body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, k.status) << k.body << " -> " << r->body;
    EXPECT_EQ(r->Header("Content-Type"), "application/problem+json") << k.body;
    if (*k.field) {
      EXPECT_NE(r->body.find(std::string("\"") + k.field + "\""), std::string::npos) << r->body;
    }
  }
  // Nothing was stored (the built-in rules may be there; none of these).
  EXPECT_EQ(c.Do("GET", "/v1/alerts/a")->status, 404);
  EXPECT_EQ(c.Do("GET", "/v1/alerts/b")->status, 404);
}

TEST_P(Alerts, ADeadLetterQueueWithMessagesFiresAndResolves) {
  TestServer s(DbArgs({"--alert-interval", "200ms"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs-dlq", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", R"({"dead_letter_queue":"jobs-dlq","max_receives":1})")
                ->status,
            201);
  auto put = c.Do("PUT", "/v1/alerts/dlq",
                  R"({"signal":"drover_queue_messages{queue=~\"*-dlq\",state=\"visible\"}",)"
                  R"("condition":{"threshold":"> 0"},"for":"1s","severity":"critical",)"
                  R"("annotations":{"summary":"{{labels.queue}} holds {{value}}"}})");
  ASSERT_EQ(put->status, 201) << put->body;
  // Another tenant's identical rule never sees this tenant's queue.
  auto kr = c.Do("POST", "/v1/keys", R"({"name":"other","role":"user","tenant":"other"})");
  ASSERT_EQ(kr->status, 201);
  auto other = s.NewClient(std::string(Json(*kr).at("key").as_string()));
  ASSERT_EQ(
      other
          .Do("PUT", "/v1/alerts/dlq",
              R"({"signal":"drover_queue_messages{state=\"visible\"}","condition":{"threshold":"> 0"}})")
          ->status,
      201);
  // A message received once and not acked: the next receive moves it to the dead-letter queue.
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs/messages", R"({"body":"lost"})")->status, 201);
  auto first = c.Do("POST", "/v1/queues/jobs/receive", R"({"max":1,"visibility_timeout":"0s"})");
  ASSERT_EQ(Json(*first).at("messages").as_array().size(), 1u) << first->body;
  auto second = c.Do("POST", "/v1/queues/jobs/receive", R"({"max":1})");
  ASSERT_EQ(Json(*second).at("messages").as_array().size(), 0u) << second->body;

  auto state = [&](client::Client& who) -> std::string {
    auto r = who.Do("GET", "/v1/alerts/dlq");
    if (!r.ok() || r->status != 200) return "error";
    auto v = Json(*r);
    const auto& alerts = v.at("status").at("alerts").as_array();
    return alerts.empty() ? "inactive" : std::string(alerts[0].at("state").as_string());
  };
  // The queue depth gauge is refreshed every 15 s: generous deadlines.
  ASSERT_TRUE(testing::WaitFor([&] { return state(c) == "firing"; }, 60000)) << state(c);
  auto got = Json(*c.Do("GET", "/v1/alerts/dlq"));
  const auto& a = got.at("status").at("alerts").as_array()[0];
  EXPECT_EQ(a.at("labels").at("queue").as_string(), "jobs-dlq");
  EXPECT_EQ(a.at("value").as_double(), 1);

  // Redriven (back to the queue that dead-lettered it), the DLQ is empty: resolved.
  auto redrive = c.Do("POST", "/v1/queues/jobs-dlq/redrive", "{}");
  ASSERT_EQ(redrive->status, 200) << redrive->body;
  EXPECT_EQ(Json(*redrive).at("moved").as_int64(), 1);
  ASSERT_TRUE(testing::WaitFor([&] { return state(c) == "inactive"; }, 60000)) << state(c);
  EXPECT_EQ(state(other), "inactive");

  // The history, newest first: resolved, firing, pending; the annotations filled in.
  auto h = c.Do("GET", "/v1/alerts/dlq/history");
  ASSERT_EQ(h->status, 200) << h->body;
  auto hv = Json(*h);
  const auto& items = hv.at("items").as_array();
  ASSERT_EQ(items.size(), 3u) << h->body;
  EXPECT_EQ(items[0].at("transition").as_string(), "resolved");
  EXPECT_EQ(items[1].at("transition").as_string(), "firing");
  EXPECT_EQ(items[1].at("annotations").at("summary").as_string(), "jobs-dlq holds 1");
  EXPECT_EQ(items[2].at("transition").as_string(), "pending");
  EXPECT_EQ(Json(*other.Do("GET", "/v1/alerts/dlq/history")).at("items").as_array().size(), 0u);
  // Each transition is in the change feed.
  auto feed = c.Do("GET", "/v1/events?kinds=alert");
  ASSERT_EQ(feed->status, 200) << feed->body;
  EXPECT_NE(feed->body.find("\"firing\""), std::string::npos) << feed->body;
  EXPECT_NE(feed->body.find("\"resolved\""), std::string::npos) << feed->body;
}

// Every tenant gets the built-in rules once; they are rules like any other: changed, deleted
// (and not given again), and the dead-letter one fires on a queue another queue names.
TEST_P(Alerts, BuiltInRulesAreGivenOnceAndAreTheTenantsToChange) {
  TestServer s(DbArgs({"--alert-interval", "200ms"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto status_of = [](client::Client& who, const std::string& name) {
    auto r = who.Do("GET", "/v1/alerts/" + name);
    return r.ok() ? r->status : -1;
  };
  for (const char* name : {"dead-letters", "environment-degraded", "schedule-firing-failed",
                           "queue-oldest-message", "route-5xx-anomaly"}) {
    ASSERT_TRUE(testing::WaitFor([&] { return status_of(c, name) == 200; })) << name;
  }
  auto new_tenant = [&](const std::string& tenant) {
    auto kr =
        c.Do("POST", "/v1/keys", R"({"name":"k","role":"user","tenant":")" + tenant + R"("})");
    EXPECT_EQ(kr->status, 201) << kr->body;
    return s.NewClient(std::string(Json(*kr).at("key").as_string()));
  };
  auto t2 = new_tenant("t2");
  ASSERT_TRUE(testing::WaitFor([&] { return status_of(t2, "environment-degraded") == 200; }));
  ASSERT_EQ(t2.Do("DELETE", "/v1/alerts/environment-degraded")->status, 204);
  // A tenant made after the delete is given them: a round ran since, and t2's stays deleted.
  auto t3 = new_tenant("t3");
  ASSERT_TRUE(testing::WaitFor([&] { return status_of(t3, "environment-degraded") == 200; }));
  EXPECT_EQ(status_of(t2, "environment-degraded"), 404);
  EXPECT_EQ(status_of(t2, "dead-letters"), 200);

  // Changed to fire at once, the dead-letter rule fires for the queue `jobs` names.
  auto put = c.Do("PUT", "/v1/alerts/dead-letters",
                  R"({"signal":"drover_queue_dead_letters","condition":{"threshold":"> 0"}})");
  ASSERT_EQ(put->status, 200) << put->body;
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs-failed", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", R"({"dead_letter_queue":"jobs-failed"})")->status, 201);
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs-failed/messages", R"({"body":"x"})")->status, 201);
  auto firing = [&] {
    auto r = c.Do("GET", "/v1/alerts/dead-letters");
    if (!r.ok() || r->status != 200) return std::string();
    auto v = Json(*r);
    for (const auto& a : v.at("status").at("alerts").as_array()) {
      if (a.at("state") == "firing") return std::string(a.at("labels").at("queue").as_string());
    }
    return std::string();
  };
  // The queue gauges are refreshed every 15 s: a generous deadline.
  ASSERT_TRUE(testing::WaitFor([&] { return !firing().empty(); }, 60000));
  EXPECT_EQ(firing(), "jobs-failed");
  // Per-environment signals, with the tenant label a rule selects by.
  ASSERT_EQ(c.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":1})")->status,
            201);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto m = c.Do("GET", "/metrics");
        return m.ok() &&
               m->body.find(
                   "drover_environment_degraded{tenant=\"default\",environment=\"web\"} ") !=
                   std::string::npos &&
               m->body.find(
                   "drover_environment_broken_instances{tenant=\"default\",environment="
                   "\"web\"} 0") != std::string::npos;
      },
      60000));
  // t2's own rule sees nothing of this tenant's queues.
  auto t2r = Json(*t2.Do("GET", "/v1/alerts/dead-letters"));
  EXPECT_TRUE(t2r.at("status").at("alerts").as_array().empty());
}

TEST_P(Alerts, NotificationsReachATopicAndAWebhookThatWasDown) {
  // The receiver's port: taken by a first receiver, which then stops until the alert fired.
  std::string url;
  {
    testing::Upstream probe("probe");
    url = probe.url();
  }
  std::string port = url.substr(url.rfind(':') + 1);
  TestServer s(DbArgs({"--alert-interval", "200ms"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs-dlq", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/inbox", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/topics/alerts", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/topics/alerts/subscriptions/inbox", "{}")->status, 201);
  // A workflow reacts to the alerts topic.
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/on-alert", R"({"steps":[
      {"name":"nap","type":"sleep","duration":"10ms"}],"triggers":[{"topic":"alerts"}]})")
                ->status,
            201);
  auto put = c.Do("PUT", "/v1/alerts/dlq",
                  R"({"signal":"drover_queue_messages{queue=\"jobs-dlq\",state=\"visible\"}",)"
                  R"("condition":{"threshold":"> 0"},"annotations":{"summary":"{{value}} lost"},)"
                  R"("notify":{"webhooks":[")" +
                      url + R"(/record"],"topics":["alerts"]}})");
  ASSERT_EQ(put->status, 201) << put->body;
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs-dlq/messages", R"({"body":"lost"})")->status, 201);

  // The topic's subscriber gets the firing.
  std::string topic_body;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = c.Do("POST", "/v1/queues/inbox/receive", R"({"max":10})");
        if (!r.ok() || r->status != 200) return false;
        auto v = Json(*r);
        for (const auto& m : v.at("messages").as_array()) topic_body += m.at("body").as_string();
        return !topic_body.empty();
      },
      60000));
  auto tv = boost::json::parse(topic_body);
  EXPECT_EQ(tv.at("status").as_string(), "firing");
  EXPECT_EQ(tv.at("alert").as_string(), "dlq");
  EXPECT_EQ(tv.at("annotations").at("summary").as_string(), "1 lost");
  // ... and started the workflow, with the notification as its input.
  std::string started;
  ASSERT_TRUE(testing::WaitFor([&] {
    auto r = c.Do("GET", "/v1/executions?workflow=on-alert");
    started = r.ok() ? r->body : "";
    return started.find("\\\"alert\\\":\\\"dlq\\\"") != std::string::npos;
  })) << started;

  // The webhook was down: the notification waits, and arrives once the receiver is up.
  testing::Upstream receiver("receiver", {"--port", port});
  ASSERT_EQ(receiver.url(), url);
  client::Client rc(testing::Plain(url));
  auto count = [&](const std::string& status) {
    auto r = rc.Do("GET", "/recorded");
    if (!r.ok() || r->status != 200) return -1;
    auto all = boost::json::parse(r->body);  // kept: iterating a temporary would dangle
    int n = 0;
    for (const auto& x : all.as_array()) n += x.at("status").as_string() == status;
    return n;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return count("firing") == 1; }, 90000));
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs-dlq/purge", "{}")->status, 200);
  ASSERT_TRUE(testing::WaitFor([&] { return count("resolved") == 1; }, 90000));

  // Silenced, the rule fires again without notifying; lifted, its resolution notifies.
  auto sil = c.Do("POST", "/v1/alerts/dlq/silence", R"({"for":"1h","comment":"known"})");
  ASSERT_EQ(sil->status, 200) << sil->body;
  EXPECT_EQ(Json(*c.Do("GET", "/v1/alerts/dlq")).at("status").at("silence").at("comment"), "known");
  EXPECT_EQ(c.Do("POST", "/v1/alerts/dlq/silence", R"({"for":"forever"})")->status, 422);
  EXPECT_EQ(c.Do("POST", "/v1/alerts/nope/silence", "{}")->status, 404);
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs-dlq/messages", R"({"body":"again"})")->status, 201);
  auto firing = [&] {
    auto v = Json(*c.Do("GET", "/v1/alerts/dlq"));
    const auto& alerts = v.at("status").at("alerts").as_array();
    return !alerts.empty() && alerts[0].at("state").as_string() == "firing";
  };
  ASSERT_TRUE(testing::WaitFor(firing, 60000));
  ASSERT_EQ(c.Do("DELETE", "/v1/alerts/dlq/silence")->status, 204);
  EXPECT_EQ(c.Do("DELETE", "/v1/alerts/dlq/silence")->status, 404);
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs-dlq/purge", "{}")->status, 200);
  ASSERT_TRUE(testing::WaitFor([&] { return count("resolved") == 2; }, 90000));
  // Notifications go out in order: a firing queued while silenced would have arrived first.
  EXPECT_EQ(count("firing"), 1);
}

// The Prometheus rules and Grafana dashboard in contrib/: promtool accepts the rules and passes
// their unit tests, and every drover metric they name is one a server exposes.
TEST(PrometheusContrib, RulesPassPromtoolAndNameOnlyMetricsDroverHas) {
  std::string dir = std::string(DROVER_SOURCE_DIR) + "/contrib/prometheus";
  ASSERT_EQ(std::system(("promtool check rules " + dir + "/drover-rules.yml >/dev/null").c_str()),
            0);
  ASSERT_EQ(std::system(
                ("cd " + dir + " && promtool test rules drover-rules.test.yml >/dev/null").c_str()),
            0);
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  // Every drover_* name in the files (histogram series named by their family).
  std::set<std::string> named;
  for (const char* file : {"drover-rules.yml", "grafana-dashboard.json"}) {
    std::string text = read(dir + "/" + file);
    ASSERT_FALSE(text.empty()) << file;
    for (size_t i = text.find("drover_"); i != std::string::npos; i = text.find("drover_", i)) {
      size_t end = i;
      while (end < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) {
        ++end;
      }
      std::string name = text.substr(i, end - i);
      for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) name.resize(name.size() - suffix.size());
      }
      named.insert(name);
      i = end;
    }
  }
  EXPECT_GT(named.size(), 10u);

  TestServer s;
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  std::set<std::string> missing;
  // Some families appear with the first refresh of the store's gauges, just after start.
  testing::WaitFor([&] {
    auto r = c.Do("GET", "/metrics");
    if (!r.ok()) return false;
    missing.clear();
    for (const auto& name : named) {
      if (r->body.find("# TYPE " + name + " ") == std::string::npos) missing.insert(name);
    }
    return missing.empty();
  });
  for (const auto& name : missing) ADD_FAILURE() << name << " is not in drover's /metrics";
}

// The dashboard's charts: each step the leader records what the step added to the API's
// requests (by route and status class), the API's latency quantiles and the executions
// started and ended (by tenant, which only that tenant sees).
TEST_P(Alerts, TheMetricHistoryRecordsEachStepForTheCharts) {
  TestServer s(DbArgs({"--alert-interval", "200ms", "--history-step", "1s"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/nap",
                 R"({"steps":[{"name":"a","type":"sleep","duration":"10ms"}]})")
                ->status,
            201);
  auto kr = c.Do("POST", "/v1/keys", R"({"name":"other","role":"user","tenant":"other"})");
  ASSERT_EQ(kr->status, 201);
  auto other = s.NewClient(std::string(Json(*kr).at("key").as_string()));
  // Summed over every series of `name` whose labels include `match`.
  auto total = [](const boost::json::value& v, std::string_view name,
                  std::map<std::string, std::string> match) {
    int64_t n = 0;
    for (const auto& series : v.at("series").as_array()) {
      if (series.at("name").as_string() != name) continue;
      bool all = true;
      for (const auto& [k, want] : match) {
        auto* got = series.at("labels").as_object().if_contains(k);
        all = all && got && got->as_string() == want;
      }
      if (!all) continue;
      for (const auto& p : series.at("points").as_array()) n += p.at("value").as_int64();
    }
    return n;
  };
  int sent = 0;
  boost::json::value seen;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        // Requests and executions keep coming until a recorded step holds them.
        ++sent;
        EXPECT_EQ(c.Do("GET", "/v1/queues")->status, 200);
        EXPECT_EQ(c.Do("GET", "/v1/queues/missing")->status, 404);
        EXPECT_EQ(c.Do("POST", "/v1/workflows/nap/executions", "{}")->status, 201);
        auto h = c.Do("GET", "/v1/metrics/history?range=10m");
        if (!h.ok() || h->status != 200) return false;
        seen = Json(*h);
        return total(seen, "api_requests", {{"route", "/v1/queues"}, {"class", "2xx"}}) >= 3 &&
               total(seen, "api_requests", {{"route", "/v1/queues/{name}"}, {"class", "4xx"}}) >=
                   3 &&
               total(seen, "executions_started", {{"workflow", "nap"}}) >= 3 &&
               total(seen, "executions_ended", {{"status", "succeeded"}}) >= 1 &&
               total(seen, "api_latency_us", {{"quantile", "0.99"}}) > 0;
      },
      60000))
      << boost::json::serialize(seen);
  EXPECT_EQ(seen.at("step_seconds").as_int64(), 1);
  EXPECT_LE(total(seen, "api_requests", {{"route", "/v1/queues"}, {"class", "2xx"}}), sent)
      << "a request is counted once";
  // Another tenant sees the server's own series, never this tenant's executions.
  auto theirs = other.Do("GET", "/v1/metrics/history?range=10m");
  ASSERT_EQ(theirs->status, 200);
  EXPECT_GT(total(Json(*theirs), "api_requests", {}), 0);
  EXPECT_EQ(total(Json(*theirs), "executions_started", {}), 0);
  auto only = Json(*c.Do("GET", "/v1/metrics/history?range=10m&name=executions_started"));
  EXPECT_FALSE(only.at("series").as_array().empty());
  for (const auto& series : only.at("series").as_array()) {
    EXPECT_EQ(series.at("name").as_string(), "executions_started");
  }
  EXPECT_EQ(c.Do("GET", "/v1/metrics/history?range=25h")->status, 400);
  EXPECT_EQ(c.Do("GET", "/v1/metrics/history?range=soon")->status, 400);
}

}  // namespace
}  // namespace drover
