#include "http/metrics.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

TEST(Metrics, RendersCountersHistogramsAndGauges) {
  Metrics m({{"GET", "/v1/variables/{key}"}, {"PUT", "/v1/variables/{key}"}});
  m.ObserveRequest(0, 200, 0.0004);
  m.ObserveRequest(0, 200, 0.02);
  m.ObserveRequest(-1, 404, 0.001);
  m.ObserveRequest(1, 200, 0.001);
  m.AddInFlight(2);
  m.ObserveCommit(0.003, 17);
  std::string out = m.Render();
  EXPECT_NE(out.find("drover_http_requests_total{route=\"/v1/variables/{key}\",method=\"GET\","
                     "status=\"200\"} 2"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("drover_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
            std::string::npos);
  // One pattern, two methods: two series, never the same labels twice.
  EXPECT_NE(out.find("drover_http_requests_total{route=\"/v1/variables/{key}\",method=\"PUT\","
                     "status=\"200\"} 1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("drover_http_request_duration_seconds_bucket{route=\"/v1/variables/{key}\","
                     "method=\"GET\",le=\"0.0005\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("drover_http_request_duration_seconds_count{route=\"/v1/variables/{key}\","
                     "method=\"GET\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("drover_http_requests_in_flight 2"), std::string::npos);
  EXPECT_NE(out.find("drover_store_commit_batch_size_bucket{le=\"32\"} 1"), std::string::npos);
  EXPECT_NE(out.find("drover_store_writes_total 17"), std::string::npos);
}

}  // namespace
}  // namespace drover::http
