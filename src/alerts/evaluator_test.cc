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

}  // namespace
}  // namespace drover::alerts
