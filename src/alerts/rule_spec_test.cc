#include "alerts/rule_spec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace drover::alerts {
namespace {

Result<RuleSpec> Parse(const std::string& text, std::string_view name = "a") {
  return ParseRuleDocument(boost::json::parse(text), name);
}

// The field errors of a refused spec, "field: message" each.
std::vector<std::string> Errors(const std::string& text) {
  auto r = Parse(text);
  std::vector<std::string> out;
  if (r.ok()) return out;
  for (const auto& e : r.status().errors()) out.push_back(e.field);
  if (out.empty()) out.push_back("(" + r.status().message() + ")");
  return out;
}

TEST(Selector, ParsesMetricsAndMatchers) {
  auto s = ParseSelector(
      R"(drover_queue_messages{queue="orders-dlq", state!="in_flight",route=~"pay*",x!~"a?c"})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->metric, "drover_queue_messages");
  ASSERT_EQ(s->matchers.size(), 4u);
  EXPECT_EQ(s->matchers[1].kind, Matcher::kNe);
  EXPECT_EQ(s->matchers[2].kind, Matcher::kGlob);
  EXPECT_EQ(s->matchers[3].kind, Matcher::kNotGlob);
  EXPECT_TRUE(s->Matches({{"queue", "orders-dlq"}, {"state", "visible"}, {"route", "payments"}}));
  EXPECT_FALSE(s->Matches({{"queue", "orders-dlq"}, {"state", "in_flight"}, {"route", "pay"}}));
  EXPECT_FALSE(s->Matches({{"queue", "orders-dlq"}, {"route", "pay"}, {"x", "abc"}}));
  EXPECT_EQ(
      s->ToString(),
      R"(drover_queue_messages{queue="orders-dlq",state!="in_flight",route=~"pay*",x!~"a?c"})");
  auto bare = ParseSelector("up");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->matchers.empty());
  auto escaped = ParseSelector(R"(m{a="q\"uo\\te"})");
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ(escaped->matchers[0].value, "q\"uo\\te");
  EXPECT_EQ(ParseSelector(escaped->ToString())->matchers[0].value, "q\"uo\\te");
}

TEST(Selector, RefusesWhatIsNotASelector) {
  for (const char* bad :
       {"", "{a=\"b\"}", "9m", "m{", "m{a}", "m{a=b}", "m{a=\"b}", "m{a=\"b\" c=\"d\"}",
        "m{a=\"b\"} x", "m{1a=\"b\"}", "m{a==\"b\"}", "m{a=\"\\x\"}", "rate(m[5m])"}) {
    EXPECT_FALSE(ParseSelector(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseSelector(std::string(2000, 'm')).ok());
  std::string many = "m{";
  for (int i = 0; i < 17; ++i) many += "a" + std::to_string(i) + "=\"x\",";
  many += "}";
  EXPECT_FALSE(ParseSelector(many).ok());
}

TEST(Selector, GlobsMatchWithoutBacktrackingBlowUp) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("pay*", "payments"));
  EXPECT_TRUE(GlobMatch("*-dlq", "orders-dlq"));
  EXPECT_TRUE(GlobMatch("a?c*z", "abcxyz"));
  EXPECT_FALSE(GlobMatch("a?c", "ac"));
  EXPECT_FALSE(GlobMatch("pay*", "repay"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXbYc"));
  // The pattern that takes a backtracking regex exponential time: quick here.
  std::string text(5000, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*b", text));
}

TEST(RuleSpec, ParsesAWholeRule) {
  auto r = Parse(R"({"kind":"Alert","name":"a","spec":{
    "signal":"drover_gateway_requests_total{code=\"5xx\"}",
    "transform":"rate","window":"10m",
    "condition":{"anomaly":{"k":5,"direction":"up"}},
    "for":"5m","severity":"critical",
    "labels":{"team":"web"},
    "annotations":{"summary":"{{name}}: {{ labels.route }} at {{value}}/s"},
    "notify":{"webhooks":["http://hooks:8080/x"],"topics":["alerts"]},
    "enabled":false}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->signal.metric, "drover_gateway_requests_total");
  EXPECT_EQ(r->transform, Transform::kRate);
  EXPECT_EQ(r->window_ms, 600'000);
  EXPECT_EQ(r->condition.kind, Condition::kAnomaly);
  EXPECT_EQ(r->condition.k, 5);
  EXPECT_EQ(r->condition.direction, Direction::kUp);
  EXPECT_EQ(r->for_ms, 300'000);
  EXPECT_EQ(r->severity, Severity::kCritical);
  EXPECT_EQ(r->labels.at("team"), "web");
  EXPECT_EQ(r->webhooks, std::vector<std::string>{"http://hooks:8080/x"});
  EXPECT_EQ(r->topics, std::vector<std::string>{"alerts"});
  EXPECT_FALSE(r->enabled);
}

TEST(RuleSpec, DefaultsAndThresholds) {
  auto r = Parse(R"({"signal":"up","condition":{"threshold":"  >= 2.5 "}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->transform, Transform::kValue);
  EXPECT_EQ(r->for_ms, 0);
  EXPECT_EQ(r->severity, Severity::kWarning);
  EXPECT_EQ(r->condition.op, Op::kGe);
  EXPECT_EQ(r->condition.value, 2.5);
  EXPECT_TRUE(r->enabled);
  for (auto [text, op] : {std::pair{"> 0", Op::kGt},
                          {"<1", Op::kLt},
                          {"<= -3", Op::kLe},
                          {"== 0", Op::kEq},
                          {"!= 0", Op::kNe}}) {
    auto t = Parse(std::string(R"({"signal":"up","condition":{"threshold":")") + text + "\"}}");
    ASSERT_TRUE(t.ok()) << text;
    EXPECT_EQ(t->condition.op, op) << text;
  }
}

TEST(RuleSpec, EveryProblemIsAFieldError) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Errors(R"({})"), (V{"signal", "condition"}));
  EXPECT_EQ(Errors(R"({"signal":"m{","condition":{"threshold":"> 0"}})"), V{"signal"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"threshold":"> x"}})"), V{"condition.threshold"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"threshold":"0"}})"), V{"condition.threshold"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"threshold":"> 1e999"}})"),
            V{"condition.threshold"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"both":1}})"), V{"condition"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{"k":0}}})"), V{"condition.anomaly.k"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{"direction":"sideways"}}})"),
            V{"condition.anomaly.direction"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"transform":"deriv"})"),
            V{"transform"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"for":"forever"})"), V{"for"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"window":"1s"})"), V{"window"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"severity":"page"})"),
            V{"severity"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"labels":{"a-b":"x"}})"),
            V{"labels"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"annotations":{"s":"{{oops}}"}})"),
            V{"annotations.s"});
  EXPECT_EQ(
      Errors(
          R"({"signal":"m","condition":{"anomaly":{}},"notify":{"webhooks":["ftp://x"],"topics":["Bad Name"]}})"),
      (V{"notify.webhooks[0]", "notify.topics[0]"}));
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"notify":{"email":["x"]}})"),
            V{"notify"});
  EXPECT_EQ(Errors(R"({"signal":"m","condition":{"anomaly":{}},"surprise":1})"), V{"surprise"});
  EXPECT_EQ(Errors(R"({"kind":"Route","name":"a","spec":{}})"),
            (V{"kind", "spec.signal", "spec.condition"}));
  EXPECT_EQ(
      Errors(R"({"signal":"m","condition":{"anomaly":{}},"notify":{"webhooks":["http://a b"]}})"),
      V{"notify.webhooks[0]"});
}

TEST(RuleSpec, TemplatesAreFilledIn) {
  std::map<std::string, std::string> labels{{"queue", "orders-dlq"}};
  TemplateContext c{"orders-dlq", 3, "critical", &labels};
  EXPECT_EQ(RenderTemplate("{{name}}: {{labels.queue}} has {{ value }} ({{severity}})", c),
            "orders-dlq: orders-dlq has 3 (critical)");
  EXPECT_EQ(RenderTemplate("{{labels.missing}}|{{value}}", {"n", 0.25, "info", &labels}), "|0.25");
  EXPECT_EQ(RenderTemplate("no placeholders, {{ unclosed", c), "no placeholders, {{ unclosed");
  EXPECT_TRUE(CheckTemplate("{{name}} {{labels.a_b}}").ok());
  EXPECT_FALSE(CheckTemplate("{{labels.}}").ok());
  EXPECT_FALSE(CheckTemplate("{{ $value }}").ok());
  EXPECT_FALSE(CheckTemplate("{{name").ok());
}

}  // namespace
}  // namespace drover::alerts
