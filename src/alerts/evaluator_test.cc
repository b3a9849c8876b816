#include "alerts/evaluator.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::alerts {
namespace {

Rule MakeRule(const std::string& tenant, const std::string& name, const std::string& spec) {
  auto r = ParseRuleDocument(boost::json::parse(spec), name);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return Rule{tenant, name, r.ok() ? *r : RuleSpec{}};
}

MetricSample S(std::string name, std::map<std::string, std::string> labels, double v) {
  return MetricSample{std::move(name), std::move(labels), v};
}

std::vector<std::string> Names(const std::vector<AlertEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(e.rule + ":" + std::string(TransitionName(e.transition)));
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Evaluator, AThresholdPendsForItsDurationFiresAndResolves) {
  std::vector<Rule> rules{
      MakeRule("t1", "dlq",
               R"({"signal":"depth{queue=~\"*-dlq\"}",)"
               R"("condition":{"threshold":"> 0"},"for":"1m",)"
               R"("severity":"critical","labels":{"team":"a"},)"
               R"("annotations":{"s":"{{labels.queue}}={{value}} {{severity}}"}})")};
  Evaluator ev;
  auto at = [&](int64_t s, double v) {
    return ev.Evaluate(rules,
                       {S("depth", {{"tenant", "t1"}, {"queue", "jobs-dlq"}}, v),
                        S("depth", {{"tenant", "t1"}, {"queue", "jobs"}}, 50)},
                       s * 1000);
  };
  EXPECT_EQ(Names(at(0, 0)), V{});
  EXPECT_EQ(Names(at(15, 3)), V{"dlq:pending"});
  EXPECT_EQ(Names(at(30, 3)), V{});
  auto fired = at(75, 4);
  ASSERT_EQ(Names(fired), V{"dlq:firing"});
  EXPECT_EQ(fired[0].labels.at("queue"), "jobs-dlq");
  EXPECT_EQ(fired[0].labels.at("team"), "a");
  EXPECT_EQ(fired[0].severity, Severity::kCritical);
  EXPECT_EQ(fired[0].annotations.at("s"), "jobs-dlq=4 critical");
  ASSERT_EQ(ev.Active().size(), 1u);
  EXPECT_EQ(ev.Active()[0].state.phase, Phase::kFiring);
  EXPECT_EQ(Names(at(90, 0)), V{"dlq:resolved"});
  EXPECT_TRUE(ev.Active().empty());
}

TEST(Evaluator, EachLabelSetIsItsOwnAlertAndTenantsSeeOnlyTheirOwn) {
  std::vector<Rule> rules{
      MakeRule("t1", "deep", R"({"signal":"depth","condition":{"threshold":"> 10"}})"),
      MakeRule("t2", "deep", R"({"signal":"depth","condition":{"threshold":"> 10"}})"),
      MakeRule("default", "busy", R"({"signal":"inflight","condition":{"threshold":"> 1"}})"),
      MakeRule("t1", "busy", R"({"signal":"inflight","condition":{"threshold":"> 1"}})")};
  Evaluator ev;
  auto events =
      ev.Evaluate(rules,
                  {S("depth", {{"tenant", "t1"}, {"queue", "a"}}, 20),
                   S("depth", {{"tenant", "t1"}, {"queue", "b"}}, 30),
                   S("depth", {{"tenant", "t1"}, {"queue", "c"}}, 1), S("inflight", {}, 5)},
                  0);
  int t1 = 0, t2 = 0, operator_busy = 0, t1_busy = 0;
  for (const auto& e : events) {
    if (e.tenant == "t1" && e.rule == "deep") ++t1;
    if (e.tenant == "t2") ++t2;
    if (e.tenant == "default" && e.rule == "busy") ++operator_busy;
    if (e.tenant == "t1" && e.rule == "busy") ++t1_busy;
  }
  EXPECT_EQ(t1, 2) << "one alert per queue over the threshold";
  EXPECT_EQ(t2, 0) << "another tenant's series are not seen";
  EXPECT_EQ(operator_busy, 1) << "server-wide series: the operator's tenant";
  EXPECT_EQ(t1_busy, 0);
}

TEST(Evaluator, ASeriesThatVanishesOrARuleThatGoesResolves) {
  auto rule = MakeRule("t1", "r", R"({"signal":"m","condition":{"threshold":"> 0"}})");
  Evaluator ev;
  EXPECT_EQ(Names(ev.Evaluate({rule}, {S("m", {{"tenant", "t1"}, {"x", "1"}}, 1)}, 0)),
            V{"r:firing"});
  EXPECT_EQ(Names(ev.Evaluate({rule}, {}, 1000)), V{"r:resolved"});
  EXPECT_EQ(ev.tracked(), 0u);
  EXPECT_EQ(Names(ev.Evaluate({rule}, {S("m", {{"tenant", "t1"}}, 1)}, 2000)), V{"r:firing"});
  EXPECT_EQ(Names(ev.Evaluate({}, {S("m", {{"tenant", "t1"}}, 1)}, 3000)), V{"r:resolved"});
  auto disabled =
      MakeRule("t1", "r", R"({"signal":"m","condition":{"threshold":"> 0"},"enabled":false})");
  EXPECT_EQ(Names(ev.Evaluate({disabled}, {S("m", {{"tenant", "t1"}}, 1)}, 4000)), V{});
}

TEST(Evaluator, RateOfACounterAgainstAThreshold) {
  auto rule = MakeRule("t1", "errors",
                       R"({"signal":"req_total{code=\"5xx\"}","transform":"rate","window":"1m",)"
                       R"("condition":{"threshold":"> 1"}})");
  Evaluator ev;
  double total = 0;
  std::vector<std::string> seen;
  for (int s = 0; s <= 120; s += 10) {
    total += s < 60 ? 5 : 50;  // 0.5/s, then 5/s
    auto events =
        ev.Evaluate({rule}, {S("req_total", {{"tenant", "t1"}, {"code", "5xx"}}, total)}, s * 1000);
    for (const auto& n : Names(events)) seen.push_back(std::to_string(s) + " " + n);
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0], "60 errors:firing") << "fires once the rate passes 1/s";
}

TEST(Evaluator, AnAnomalyRuleLearnsThenFires) {
  auto rule =
      MakeRule("t1", "odd", R"({"signal":"lat","condition":{"anomaly":{"k":4}},"for":"2m"})");
  Evaluator ev;
  std::vector<std::string> seen;
  // A steady signal with a little wobble for two hours, then a jump.
  for (int m = 0; m < 150; ++m) {
    double v = m < 140 ? 100 + (m % 3) : 300;
    for (const auto& n :
         Names(ev.Evaluate({rule}, {S("lat", {{"tenant", "t1"}}, v)}, m * 60'000))) {
      seen.push_back(std::to_string(m) + " " + n);
    }
  }
  EXPECT_EQ(seen, (V{"140 odd:pending", "142 odd:firing"}));
}

// Counters of several servers: the rule sees their rates summed; a server that stops reporting
// drops out without its counters reading as a reset (no spike).
TEST(Evaluator, SeveralServersRatesAreSummedAndOneGoneIsNoSpike) {
  std::vector<Rule> rules{MakeRule(
      "default", "busy",
      R"({"signal":"req_total","transform":"rate","window":"1m","condition":{"threshold":"> 25"}})")};
  Evaluator ev;
  auto round = [&](int64_t s, std::vector<std::pair<std::string, double>> servers) {
    std::vector<MetricSample> samples;
    for (auto& [origin, v] : servers) {
      auto m = S("req_total", {}, v);
      m.origin = origin;
      samples.push_back(m);
    }
    return Names(ev.Evaluate(rules, samples, s * 1000));
  };
  // 10/s here and 20/s on server b: 30/s in all, over 25.
  EXPECT_EQ(round(0, {{"", 0}, {"b", 1000}}), V{});
  EXPECT_EQ(round(10, {{"", 100}, {"b", 1200}}), V{"busy:firing"});
  // b goes away: 10/s remain (not a reset of 1200 to 0).
  EXPECT_EQ(round(20, {{"", 200}}), V{"busy:resolved"});
  EXPECT_EQ(round(30, {{"", 300}}), V{});
}

// A route's p99 from its latency histogram: the buckets' rates over the window, summed over
// servers; one alert per route (the `le` label is not part of it).
TEST(Evaluator, AHistogramQuantileIsASignal) {
  std::vector<Rule> rules{
      MakeRule("t1", "slow",
               R"({"signal":"lat_seconds{route=\"api\"}","transform":"p99","window":"1m",)"
               R"("condition":{"threshold":"> 0.4"}})")};
  Evaluator ev;
  // Cumulative bucket counts of two servers at time s.
  auto round = [&](int64_t s, double fast, double slow, double b_fast) {
    std::vector<MetricSample> samples;
    auto bucket = [&](const std::string& origin, const char* le, double n) {
      auto m = S("lat_seconds_bucket", {{"tenant", "t1"}, {"route", "api"}, {"le", le}}, n);
      m.origin = origin;
      samples.push_back(m);
    };
    bucket("", "0.1", fast);
    bucket("", "0.5", fast + slow);
    bucket("", "+Inf", fast + slow);
    bucket("b", "0.1", b_fast);
    bucket("b", "0.5", b_fast);
    bucket("b", "+Inf", b_fast);
    samples.push_back(S("lat_seconds_sum", {{"tenant", "t1"}, {"route", "api"}}, 1));
    return ev.Evaluate(rules, samples, s * 1000);
  };
  EXPECT_TRUE(round(0, 0, 0, 0).empty());
  // 10 s: 90 fast here and 0 slow, 900 fast on b: p99 well under 0.4.
  EXPECT_TRUE(round(10, 90, 0, 900).empty());
  EXPECT_EQ(ev.tracked(), 1u);
  // Then 100 slow ones here: of ~1,190 in the window, the top 1 % are slow (0.1..0.5).
  auto events = round(20, 180, 100, 900);
  ASSERT_EQ(Names(events), V{"slow:firing"});
  EXPECT_EQ(events[0].labels.count("le"), 0u);
  EXPECT_GT(events[0].state.value, 0.4);
  EXPECT_LE(events[0].state.value, 0.5);
}

}  // namespace
}  // namespace drover::alerts
