#include "alerts/defaults.h"

namespace drover::alerts {

const std::vector<DefaultRule>& DefaultRules() {
  static const std::vector<DefaultRule> kRules = {
      {"dead-letters",
       R"j({"signal":"drover_queue_dead_letters","condition":{"threshold":"> 0"},"for":"1m",)j"
       R"j("severity":"warning","annotations":{"summary":)j"
       R"j("{{labels.queue}} holds {{value}} dead-lettered messages"}})j"},
      {"environment-degraded",
       R"j({"signal":"drover_environment_degraded","condition":{"threshold":"> 0"},"for":"5m",)j"
       R"j("severity":"critical","annotations":{"summary":)j"
       R"j("environment {{labels.environment}} has been degraded for 5 minutes"}})j"},
      {"schedule-firing-failed",
       R"j({"signal":"drover_schedule_last_firing_failed","condition":{"threshold":"> 0"},)j"
       R"j("severity":"warning","annotations":{"summary":)j"
       R"j("the latest firing of schedule {{labels.schedule}} failed"}})j"},
      {"queue-oldest-message",
       R"j({"signal":"drover_queue_oldest_message_age_seconds","condition":{"threshold":"> 300"},)j"
       R"j("for":"1m","severity":"warning","annotations":{"summary":)j"
       R"j("the oldest message of {{labels.queue}} is {{value}} s old"}})j"},
      {"route-5xx-anomaly",
       R"j({"signal":"drover_gateway_requests_total{code=\"5xx\"}","transform":"rate",)j"
       R"j("window":"5m","condition":{"anomaly":{"k":4,"direction":"up"}},"for":"10m",)j"
       R"j("severity":"warning","annotations":{"summary":)j"
       R"j("route {{labels.route}} answers 5xx at an unusual rate ({{value}}/s)"}})j"},
  };
  return kRules;
}

}  // namespace drover::alerts
