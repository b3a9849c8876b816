// The cost of one alert round (bench/RESULTS.md "Alerts"): the leader parses the metrics text
// and evaluates every rule against it every --alert-interval. `build/src/alerts_bench`.
// A server with 1,000 queues (4 series each plus counters) and 100 routes; 1,000 rules: 500
// thresholds on one queue each, 300 rates of a queue's sent counter, 200 anomaly rules on a
// route's 5xx rate (each with its learned baseline). Values move every round.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "alerts/evaluator.h"
#include "alerts/exposition.h"
#include "alerts/rule_spec.h"

namespace drover::alerts {
namespace {

constexpr int kQueues = 1000, kRoutes = 100;

std::string Exposition(int round) {
  std::string out;
  out.reserve(1 << 20);
  for (int q = 0; q < kQueues; ++q) {
    int v = (q * 7 + round) % 5;
    out += fmt::format(
        "drover_queue_messages{{tenant=\"default\",queue=\"q-{}\",state=\"visible\"}} {}\n"
        "drover_queue_messages{{tenant=\"default\",queue=\"q-{}\",state=\"in_flight\"}} {}\n"
        "drover_queue_messages{{tenant=\"default\",queue=\"q-{}\",state=\"delayed\"}} 0\n"
        "drover_queue_oldest_message_age_seconds{{tenant=\"default\",queue=\"q-{}\"}} {}\n"
        "drover_queue_messages_sent_total{{tenant=\"default\",queue=\"q-{}\"}} {}\n",
        q, v, q, v / 2, q, q, v * 3.5, q, round * 40 + q);
  }
  for (int r = 0; r < kRoutes; ++r) {
    for (const char* code : {"2xx", "4xx", "5xx"}) {
      out += fmt::format(
          "drover_gateway_requests_total{{tenant=\"default\",route=\"r-{}\",code=\"{}\"}} {}\n", r,
          code, round * (code[0] == '2' ? 300 : 3) + r);
    }
  }
  return out;
}

std::vector<Rule> Rules() {
  std::vector<Rule> rules;
  auto add = [&](std::string name, std::string spec) {
    auto parsed = ParseRuleDocument(boost::json::parse(spec), name);
    if (!parsed.ok()) std::abort();
    rules.push_back({"default", std::move(name), std::move(*parsed)});
  };
  for (int i = 0; i < 500; ++i) {
    add(fmt::format("depth-{}", i),
        fmt::format(R"({{"signal":"drover_queue_messages{{queue=\"q-{}\",state=\"visible\"}}",)"
                    R"("condition":{{"threshold":"> 3"}},"for":"1m"}})",
                    i));
  }
  for (int i = 0; i < 300; ++i) {
    add(fmt::format("sent-{}", i),
        fmt::format(R"({{"signal":"drover_queue_messages_sent_total{{queue=\"q-{}\"}}",)"
                    R"("transform":"rate","window":"5m","condition":{{"threshold":"> 100"}}}})",
                    i));
  }
  for (int i = 0; i < 200; ++i) {
    add(fmt::format("errors-{}", i),
        fmt::format(R"({{"signal":"drover_gateway_requests_total{{route=\"r-{}\",code=\"5xx\"}}",)"
                    R"("transform":"rate","window":"5m","condition":{{"anomaly":{{"k":4}}}}}})",
                    i % kRoutes));
  }
  return rules;
}

// One round: parse the text, evaluate the 1,000 rules (15 s apart in time).
void BM_Round(benchmark::State& state) {
  auto rules = Rules();
  std::vector<std::string> texts;
  for (int i = 0; i < 16; ++i) texts.push_back(Exposition(i));
  Evaluator ev;
  int64_t now = 1'796'600'000'000;
  int round = 0;
  for (auto _ : state) {
    auto samples = ParseExposition(texts[static_cast<size_t>(round++ % 16)]);
    auto events = ev.Evaluate(rules, samples, now);
    benchmark::DoNotOptimize(events);
    now += 15000;
  }
  state.counters["rules"] = static_cast<double>(rules.size());
  state.counters["alerts_tracked"] = static_cast<double>(ev.tracked());
}
BENCHMARK(BM_Round)->Unit(benchmark::kMillisecond);

// The parse alone (about 5,300 series).
void BM_ParseOnly(benchmark::State& state) {
  std::string text = Exposition(1);
  for (auto _ : state) benchmark::DoNotOptimize(ParseExposition(text));
}
BENCHMARK(BM_ParseOnly)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace drover::alerts

BENCHMARK_MAIN();
