#include "alerts/shared_metrics.h"

#include <gtest/gtest.h>

namespace drover::alerts {
namespace {

TEST(SharedMetrics, ServersShareTheirCountersAndHistogramsOnly) {
  std::string text =
      "# HELP drover_http_requests_total x\n"
      "# TYPE drover_http_requests_total counter\n"
      "drover_http_requests_total{route=\"/v1/x\",status=\"200\"} 7\n"
      "drover_http_request_duration_seconds_bucket{le=\"0.01\"} 3\n"
      "drover_http_request_duration_seconds_sum 0.5\n"
      "drover_http_request_duration_seconds_count 7\n"
      "drover_queue_messages{queue=\"q\",state=\"visible\"} 4\n"
      "process_cpu_seconds_total 12\n"
      "drover_http_requests_in_flight 1\n";
  EXPECT_EQ(SharedPart(text),
            "drover_http_requests_total{route=\"/v1/x\",status=\"200\"} 7\n"
            "drover_http_request_duration_seconds_bucket{le=\"0.01\"} 3\n"
            "drover_http_request_duration_seconds_sum 0.5\n"
            "drover_http_request_duration_seconds_count 7\n");
}

}  // namespace
}  // namespace drover::alerts
