#include "workflows/definition.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::workflows {
namespace {

Result<WorkflowSpec> Parse(std::string_view text) {
  return ParseWorkflowDocument(boost::json::parse(text), "wf");
}

// The field errors of an invalid spec, as "field: message" lines.
std::vector<std::string> Errors(std::string_view text) {
  auto r = Parse(text);
  std::vector<std::string> out;
  if (r.ok()) return out;
  for (const auto& e : r.status().errors()) out.push_back(e.field + ": " + e.message);
  if (out.empty()) out.push_back(r.status().message());
  return out;
}

using Strings = std::vector<std::string>;

// Whether some error line contains `part`.
bool Has(const Strings& errors, std::string_view part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(WorkflowDefinition, StepsRunInFileOrderUnlessNeedsSaysOtherwise) {
  auto spec = Parse(R"({"kind":"Workflow","name":"wf","spec":{"steps":[
      {"name":"a","type":"task","queue":"q","command":"./a.sh"},
      {"name":"b","type":"sleep","duration":"30s"},
      {"name":"c","type":"http","url":"http://127.0.0.1:9/x","needs":[]},
      {"name":"d","type":"scale","environment":"web","capacity":3,"needs":["b","c"]}]}})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->steps.size(), 4u);
  EXPECT_TRUE(spec->steps[0].needs.empty());
  EXPECT_EQ(spec->steps[1].needs, std::vector<int>{0});
  EXPECT_TRUE(spec->steps[2].needs.empty());
  EXPECT_EQ(spec->steps[3].needs, (std::vector<int>{1, 2}));
  EXPECT_EQ(spec->steps[0].queue, "q");
  EXPECT_EQ(spec->steps[1].duration, std::chrono::seconds(30));
  EXPECT_EQ(spec->steps[3].environment, "web");
}

TEST(WorkflowDefinition, NeedsErrorsNameTheField) {
  EXPECT_EQ(Errors(R"({"steps":[{"name":"a","type":"sleep","duration":"1s","needs":["x"]}]})"),
            Strings{"spec.steps[0].needs[0]: no step named x"});
  EXPECT_EQ(Errors(R"({"steps":[{"name":"a","type":"sleep","duration":"1s","needs":["a"]}]})"),
            Strings{"spec.steps[0].needs[0]: a step cannot need itself"});
  auto cycle = Errors(R"({"steps":[
      {"name":"a","type":"sleep","duration":"1s","needs":["c"]},
      {"name":"b","type":"sleep","duration":"1s","needs":["a"]},
      {"name":"c","type":"sleep","duration":"1s","needs":["b"]}]})");
  ASSERT_EQ(cycle.size(), 1u);
  EXPECT_TRUE(Has(cycle, "makes a cycle"));
  EXPECT_EQ(Errors(R"({"steps":[{"name":"a","type":"sleep","duration":"1s"},
                                {"name":"a","type":"sleep","duration":"1s"}]})"),
            Strings{"spec.steps[1].name: another step is named a"});
}

TEST(WorkflowDefinition, EachTypeChecksItsFields) {
  auto e = Errors(R"({"steps":[
      {"name":"a","type":"task"},
      {"name":"b","type":"http","url":"ftp://x","method":"BREW"},
      {"name":"c","type":"sleep","duration":"soon"},
      {"name":"d","type":"scale","environment":"Web","capacity":-1},
      {"name":"e","type":"dance"},
      {"name":"f","type":"sleep","duration":"1s","url":"http://x"}]})");
  EXPECT_EQ(e.size(), 8u);
  for (const char* want :
       {"spec.steps[0].queue: is required", "spec.steps[1].url: must start with http://",
        "spec.steps[1].method: must be one of GET, POST, PUT, PATCH, DELETE, HEAD",
        "spec.steps[2].duration: must be a duration in 1ms .. 365d",
        "spec.steps[3].environment: must match",
        "spec.steps[3].capacity: must be 0..100000 or a template",
        "spec.steps[4].type: must be one of task, http, sleep, scale, wait", "spec.steps[5].url"}) {
    EXPECT_TRUE(Has(e, want)) << want;
  }
}

TEST(WorkflowDefinition, TemplatesMayReadOnlyStepsThatRanBefore) {
  EXPECT_TRUE(Parse(R"({"steps":[
      {"name":"a","type":"task","queue":"q","input":{"d":"{{ input.date }}"}},
      {"name":"b","type":"task","queue":"q","input":{"rows":"{{ steps.a.output.rows }}"}}]})")
                  .ok());
  EXPECT_EQ(Errors(R"({"steps":[
      {"name":"a","type":"task","queue":"q","needs":[]},
      {"name":"b","type":"task","queue":"q","needs":[],"input":"{{ steps.a.output }}"}]})"),
            Strings{"spec.steps[1].input: reads a, which this step does not run after (add it "
                    "to needs)"});
  EXPECT_EQ(
      Errors(
          R"({"steps":[{"name":"a","type":"task","queue":"q","input":{"x":["{{ env.HOME }}"]}}]})"),
      Strings{"spec.steps[0].input.x[0]: {{ env.HOME }} must read input.PATH or "
              "steps.NAME.output.PATH"});
  EXPECT_EQ(Errors(R"({"steps":[{"name":"a","type":"http","url":"http://x/{{ input.id"}]})"),
            Strings{"spec.steps[0].url: unclosed {{"});
  EXPECT_EQ(
      Errors(
          R"({"steps":[{"name":"a","type":"task","queue":"q","input":"{{ steps.zz.output }}"}]})"),
      Strings{"spec.steps[0].input: no step named zz"});
}

TEST(WorkflowDefinition, RetryConcurrencyTriggersAndOnFailure) {
  auto spec = Parse(R"({"steps":[{"name":"a","type":"task","queue":"q","timeout":"10m",
        "retry":{"max_attempts":3,"backoff":"10s","max_backoff":"25s"}}],
      "on_failure":[{"name":"cleanup","type":"http","url":"http://127.0.0.1:1/x",
        "body":"{{ steps.a.output }}"}],
      "concurrency":{"key":"{{ input.user }}","max":2},
      "triggers":[{"topic":"orders"}],"retention":"2d"})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const auto& r = spec->steps[0].retry;
  EXPECT_EQ(r.max_attempts, 3);
  EXPECT_EQ(r.DelayBefore(2), std::chrono::seconds(10));
  EXPECT_EQ(r.DelayBefore(3), std::chrono::seconds(20));
  EXPECT_EQ(r.DelayBefore(4), std::chrono::seconds(25));
  EXPECT_EQ(spec->steps[0].timeout, std::chrono::minutes(10));
  EXPECT_EQ(spec->Find("cleanup"), 1);
  EXPECT_EQ(spec->concurrency->max, 2);
  EXPECT_EQ(spec->trigger_topics, Strings{"orders"});
  EXPECT_EQ(spec->retention, std::chrono::hours(48));

  auto conc = Errors(R"({"steps":[{"name":"a","type":"sleep","duration":"1s"}],
      "concurrency":{"key":"{{ steps.a.output }}","max":0}})");
  EXPECT_EQ(conc.size(), 2u);
  EXPECT_TRUE(Has(conc, "spec.concurrency.key: may only read {{ input... }}"));
  EXPECT_TRUE(Has(conc, "spec.concurrency.max: must be 1..10000"));
  EXPECT_EQ(Errors(R"({"steps":[{"name":"a","type":"sleep","duration":"1s"}],
      "on_failure":[{"name":"b","type":"sleep","duration":"1s","needs":["a"]}]})"),
            Strings{"spec.on_failure[0].needs: on_failure steps run in order and have no needs"});
  EXPECT_EQ(Errors(R"({"steps":[]})"), Strings{"spec.steps: must be a list of 1 to 100 steps"});
  EXPECT_TRUE(Has(Errors(R"({"kind":"Queue","name":"wf","spec":{"steps":[]}})"), "kind"));
}

}  // namespace
}  // namespace drover::workflows
