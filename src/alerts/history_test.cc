#include "alerts/history.h"

#include <gtest/gtest.h>

#include <map>

namespace drover::alerts {
namespace {

MetricSample S(std::string name, std::map<std::string, std::string> labels, double v,
               std::string origin = "") {
  return {std::move(name), std::move(labels), v, std::move(origin)};
}

// The recorded points as "tenant|name|labels" -> value.
std::map<std::string, int64_t> Points(const std::vector<HistoryPoint>& points) {
  std::map<std::string, int64_t> out;
  for (const auto& p : points) out[p.tenant + "|" + p.name + "|" + p.labels] = p.value;
  return out;
}

TEST(HistoryRecorderTest, CountsWhatEachMinuteAddedByTheKeptLabels) {
  HistoryRecorder r;
  auto requests = [](double ok, double failed) {
    return std::vector<MetricSample>{
        S("drover_http_requests_total",
          {{"route", "/v1/status"}, {"method", "GET"}, {"status", "200"}}, ok),
        S("drover_http_requests_total",
          {{"route", "/v1/status"}, {"method", "HEAD"}, {"status", "204"}}, ok),
        S("drover_http_requests_total",
          {{"route", "/v1/status"}, {"method", "GET"}, {"status", "503"}}, failed),
        S("process_cpu_seconds_total", {}, ok),
    };
  };
  EXPECT_TRUE(r.Record(requests(10, 0)).empty()) << "the first round only remembers";
  auto p = Points(r.Record(requests(25, 2)));
  EXPECT_EQ(p, (std::map<std::string, int64_t>{
                   {R"(|api_requests|{"class":"2xx","route":"/v1/status"})", 30},
                   {R"(|api_requests|{"class":"5xx","route":"/v1/status"})", 2}}));
  EXPECT_TRUE(r.Record(requests(25, 2)).empty()) << "a quiet minute has no points";
  // A restarted server's counters start again from zero: all of it is new.
  p = Points(r.Record(requests(4, 2)));
  EXPECT_EQ(p.at(R"(|api_requests|{"class":"2xx","route":"/v1/status"})"), 8);
  EXPECT_FALSE(p.contains(R"(|api_requests|{"class":"5xx","route":"/v1/status"})"));
}

TEST(HistoryRecorderTest, TurnsAMinutesHistogramIntoQuantiles) {
  HistoryRecorder r;
  auto latency = [](double fast, double slower, double all) {
    std::vector<MetricSample> out;
    for (const char* route : {"/v1/a", "/v1/b"}) {
      out.push_back(S("drover_http_request_duration_seconds_bucket",
                      {{"route", route}, {"le", "0.001"}}, fast / 2));
      out.push_back(S("drover_http_request_duration_seconds_bucket",
                      {{"route", route}, {"le", "0.01"}}, slower / 2));
      out.push_back(S("drover_http_request_duration_seconds_bucket",
                      {{"route", route}, {"le", "+Inf"}}, all / 2));
    }
    return out;
  };
  ASSERT_TRUE(r.Record(latency(100, 100, 100)).empty());
  // This minute: 50 under 1 ms, 40 more under 10 ms, 10 above (over both routes).
  auto p = Points(r.Record(latency(150, 190, 200)));
  EXPECT_EQ(p.at(R"(|api_latency_us|{"quantile":"0.5"})"), 1000);
  EXPECT_EQ(p.at(R"(|api_latency_us|{"quantile":"0.95"})"), 10000) << "above every bound";
  EXPECT_EQ(p.at(R"(|api_latency_us|{"quantile":"0.99"})"), 10000);
  EXPECT_TRUE(r.Record(latency(150, 190, 200)).empty()) << "no request, no quantile";
}

TEST(HistoryRecorderTest, KeepsTenantsApartAndCountsOtherServersFromTheirSecondRound) {
  HistoryRecorder r;
  auto started = [](double a, double b) {
    return std::vector<MetricSample>{
        S("drover_executions_started_total", {{"tenant", "a"}, {"workflow", "etl"}}, a),
        S("drover_executions_started_total", {{"tenant", "b"}, {"workflow", "etl"}}, b),
    };
  };
  ASSERT_TRUE(r.Record(started(1, 1)).empty());
  auto round = started(3, 1);
  // Another server's figures, first seen now: their past is not this minute's.
  round.push_back(
      S("drover_executions_started_total", {{"tenant", "a"}, {"workflow", "etl"}}, 50, "s2"));
  auto p = Points(r.Record(round));
  EXPECT_EQ(p, (std::map<std::string, int64_t>{{R"(a|executions_started|{"workflow":"etl"})", 2}}));
  round = started(4, 2);
  round.push_back(
      S("drover_executions_started_total", {{"tenant", "a"}, {"workflow", "etl"}}, 55, "s2"));
  p = Points(r.Record(round));
  EXPECT_EQ(p.at(R"(a|executions_started|{"workflow":"etl"})"), 6) << "1 here and 5 there";
  EXPECT_EQ(p.at(R"(b|executions_started|{"workflow":"etl"})"), 1);
}

}  // namespace
}  // namespace drover::alerts
